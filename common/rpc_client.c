/* The RPC client over gRPC C core: shared channels, unary calls with absolute
 * deadlines, and a fan-out that runs many calls on one completion queue and
 * waits for all of them (each bounded by its own deadline). See rpc.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "error.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"
#include "redis.h"
#include "rpc_internal.h"

#define DEFAULT_MAX_MESSAGE ((size_t)4 << 20)
/* Reconnect defaults (see struct cascade_rpc_channel_opts): with +-20% jitter
 * the longest wait between attempts, 960 ms, stays under a second. */
#define DEFAULT_INITIAL_BACKOFF_MS 100
#define DEFAULT_MAX_BACKOFF_MS 800
#define DEFAULT_CONNECT_TIMEOUT_MS 1000
/* How long past the latest deadline the fan-out waits before cancelling
 * calls itself (gRPC normally ends them at their deadline). */
#define FANOUT_SLACK_MS 1000

struct cascade_rpc_channel {
    grpc_channel *channel;
    char target[256];
    char auth_header[sizeof("Bearer ") + CASCADE__RPC_TOKEN_MAX]; /* "" = none sent */
};

void cascade_rpc_init(void)
{
    grpc_init();
}

void cascade_rpc_shutdown(void)
{
    grpc_shutdown();
}

static grpc_arg int_arg(const char *key, int value)
{
    grpc_arg a = {.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = value};
    return a;
}

cascade_rpc_channel *cascade_rpc_channel_create(const char *target, size_t max_message_bytes)
{
    struct cascade_rpc_channel_opts opts = {.max_message_bytes = max_message_bytes};
    return cascade_rpc_channel_create_opts(target, &opts);
}

cascade_rpc_channel *cascade_rpc_channel_create_opts(const char *target,
                                                     const struct cascade_rpc_channel_opts *opts)
{
    char err[600];
    return cascade_rpc_channel_create_err(target, opts, err, sizeof err);
}

void cascade_rpc_channel_opts_tls_from_env(struct cascade_rpc_channel_opts *opts)
{
    static const char *const names[3] = {"CASCADE_TLS_CA", "CASCADE_TLS_CLIENT_CERT",
                                         "CASCADE_TLS_CLIENT_KEY"};
    const char **fields[3] = {&opts->tls_ca_file, &opts->tls_cert_file, &opts->tls_key_file};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        if (v && v[0])
            *fields[i] = v;
    }
}

cascade_rpc_channel *cascade_rpc_channel_create_env(const char *target, size_t max_message_bytes,
                                                    char *err, size_t errlen)
{
    struct cascade_rpc_channel_opts opts = {.max_message_bytes = max_message_bytes};
    cascade_rpc_channel_opts_tls_from_env(&opts);
    return cascade_rpc_channel_create_err(target, &opts, err, errlen);
}

static bool set(const char *s)
{
    return s && s[0];
}

/* Channel credentials for opts: insecure without a CA, else TLS with the CA
 * (and the client certificate when given). NULL with a message in err. */
static grpc_channel_credentials *channel_credentials(const struct cascade_rpc_channel_opts *opts,
                                                     char *err, size_t errlen)
{
    grpc_channel_credentials *creds = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;
    if (!set(opts->tls_ca_file)) {
        if (set(opts->tls_cert_file) || set(opts->tls_key_file)) {
            snprintf(err, errlen, "a TLS client certificate needs the CA file too (--tls-ca)");
            return NULL;
        }
        return grpc_insecure_credentials_create();
    }
    if (set(opts->tls_cert_file) != set(opts->tls_key_file)) {
        snprintf(err, errlen, "the TLS client certificate and key go together");
        return NULL;
    }
    ca = cascade__rpc_read_pem(opts->tls_ca_file, "TLS CA file", err, errlen);
    if (!ca)
        goto out;
    if (set(opts->tls_cert_file)) {
        cert = cascade__rpc_read_pem(opts->tls_cert_file, "TLS client certificate", err, errlen);
        key =
            cert ? cascade__rpc_read_pem(opts->tls_key_file, "TLS client key", err, errlen) : NULL;
        if (!key)
            goto out;
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    if (!creds)
        snprintf(err, errlen, "cannot create TLS credentials from %s", opts->tls_ca_file);
out:
    free(ca);
    free(cert);
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    return creds;
}

cascade_rpc_channel *cascade_rpc_channel_create_err(const char *target,
                                                    const struct cascade_rpc_channel_opts *opts,
                                                    char *err, size_t errlen)
{
    static const struct cascade_rpc_channel_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!target || !target[0] || strlen(target) >= 256) {
        snprintf(err, errlen, "bad target \"%s\" (expected host:port)", target ? target : "");
        return NULL;
    }
    grpc_channel_credentials *creds = channel_credentials(opts, err, errlen);
    if (!creds)
        return NULL;
    cascade_rpc_channel *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        grpc_channel_credentials_release(creds);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(ch->target, sizeof(ch->target), "%s", target);
    int max_backoff_ms = opts->max_backoff_ms > 0 ? opts->max_backoff_ms : DEFAULT_MAX_BACKOFF_MS;
    /* gRPC core reads "min reconnect backoff" as the least time a connection
     * attempt is given (its MIN_CONNECT_TIMEOUT), so that is our connect timeout.
     * Names are re-resolved at most once per max backoff, so a stage that comes
     * back at a new address is found as quickly as one at the old address. */
    grpc_arg args[] = {
        int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                (int)(opts->max_message_bytes ? opts->max_message_bytes : DEFAULT_MAX_MESSAGE)),
        int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, opts->initial_backoff_ms > 0
                                                           ? opts->initial_backoff_ms
                                                           : DEFAULT_INITIAL_BACKOFF_MS),
        int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms),
        int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, opts->connect_timeout_ms > 0
                                                       ? opts->connect_timeout_ms
                                                       : DEFAULT_CONNECT_TIMEOUT_MS),
        int_arg(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, max_backoff_ms),
        int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, opts->own_connection ? 1 : 0),
    };
    grpc_channel_args channel_args = {sizeof(args) / sizeof(args[0]), args};
    ch->channel = grpc_channel_create(target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    if (!ch->channel) {
        snprintf(err, errlen, "cannot create a channel to %s", target);
        free(ch);
        return NULL;
    }
    return ch;
}

void cascade_rpc_channel_destroy(cascade_rpc_channel *ch)
{
    if (!ch)
        return;
    grpc_channel_destroy(ch->channel);
    free(ch);
}

const char *cascade_rpc_channel_target(const cascade_rpc_channel *ch)
{
    return ch->target;
}

int cascade_rpc_channel_set_auth_token(cascade_rpc_channel *ch, const char *token)
{
    if (!ch)
        return CASCADE_EINVAL;
    if (!token || !token[0]) {
        ch->auth_header[0] = '\0';
        return 0;
    }
    if (cascade__rpc_token_valid(token) != 0)
        return CASCADE_EINVAL;
    snprintf(ch->auth_header, sizeof(ch->auth_header), "Bearer %s", token);
    return 0;
}

int cascade_rpc_channel_auth_from_env(cascade_rpc_channel *ch, char *err, size_t errlen)
{
    char token[300] = "";
    const char *env = getenv("CASCADE_AUTH_TOKEN");
    const char *file = getenv("CASCADE_AUTH_TOKEN_FILE");
    if (env && env[0])
        snprintf(token, sizeof token, "%s", env);
    else if (file && file[0] &&
             cascade_redis_read_secret_file(file, "CASCADE_AUTH_TOKEN_FILE", token, sizeof token,
                                            err, errlen) != 0)
        return CASCADE_EINVAL;
    if (cascade_rpc_channel_set_auth_token(ch, token) != 0) {
        snprintf(err, errlen, "the auth token must be 1..256 visible ASCII characters");
        return CASCADE_EINVAL;
    }
    return 0;
}

/* gRPC-side state of one outgoing call. */
struct pending {
    struct cascade_rpc_call *call;
    grpc_call *gcall;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_metadata request_md[2]; /* x-request-id, authorization */
    size_t n_request_md;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_status_code status;
    grpc_slice details;
    int64_t start_us;
    int started;
    int done;
};

static void set_result(struct cascade_rpc_call *call, grpc_status_code status, const char *message,
                       cascade_arena *arena)
{
    call->status = status;
    call->status_message = cascade_arena_strdup(arena, message ? message : "");
    if (!call->status_message)
        call->status_message = "";
}

/* Create the call and start its one batch. Failures are recorded in the call. */
static void pending_start(struct pending *p, grpc_completion_queue *cq, const grpc_byte_buffer *raw,
                          cascade_arena *arena)
{
    struct cascade_rpc_call *call = p->call;
    grpc_op ops[6];
    size_t n = 0;

    grpc_metadata_array_init(&p->initial_md);
    grpc_metadata_array_init(&p->trailing_md);
    p->start_us = cascade_now_us();
    if (!call->channel || !call->method) {
        set_result(call, GRPC_STATUS_INVALID_ARGUMENT, "call has no channel or method", arena);
        p->done = 1;
        return;
    }
    if (raw) {
        p->send = grpc_byte_buffer_copy((grpc_byte_buffer *)raw);
    } else if (call->request) {
        p->send = cascade__rpc_pack(call->request);
    }
    if (!p->send) {
        set_result(call, GRPC_STATUS_INTERNAL, "cannot encode the request", arena);
        p->done = 1;
        return;
    }
    grpc_slice method = grpc_slice_from_static_string(call->method);
    p->gcall =
        grpc_channel_create_call(call->channel->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                 NULL, cascade__rpc_deadline_to_gpr(call->deadline_ms), NULL);
    if (!p->gcall) {
        set_result(call, GRPC_STATUS_INTERNAL, "cannot create the call", arena);
        p->done = 1;
        return;
    }
    memset(ops, 0, sizeof(ops));
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (call->request_id && call->request_id[0]) {
        grpc_metadata *md = &p->request_md[p->n_request_md++];
        md->key = grpc_slice_from_static_string("x-request-id");
        md->value = grpc_slice_from_copied_string(call->request_id);
    }
    if (call->channel->auth_header[0]) {
        grpc_metadata *md = &p->request_md[p->n_request_md++];
        md->key = grpc_slice_from_static_string("authorization");
        md->value = grpc_slice_from_static_string(call->channel->auth_header);
    }
    ops[n].data.send_initial_metadata.count = p->n_request_md;
    ops[n].data.send_initial_metadata.metadata = p->n_request_md ? p->request_md : NULL;
    n++;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = p->send;
    n++;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &p->initial_md;
    n++;
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &p->recv;
    n++;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &p->trailing_md;
    ops[n].data.recv_status_on_client.status = &p->status;
    ops[n].data.recv_status_on_client.status_details = &p->details;
    n++;
    grpc_call_error e = grpc_call_start_batch(p->gcall, ops, n, p, NULL);
    if (e != GRPC_CALL_OK) {
        set_result(call, GRPC_STATUS_INTERNAL, grpc_call_error_to_string(e), arena);
        p->done = 1;
        return;
    }
    p->started = 1;
}

/* Turn a completed call into results: status, message, decoded response. */
static void pending_finish(struct pending *p, cascade_arena *arena)
{
    struct cascade_rpc_call *call = p->call;
    call->latency_us = cascade_now_us() - p->start_us;
    if (!p->started)
        return;
    size_t dlen = GRPC_SLICE_LENGTH(p->details);
    char *msg = cascade_arena_alloc(arena, dlen + 1);
    if (msg) {
        memcpy(msg, GRPC_SLICE_START_PTR(p->details), dlen);
        msg[dlen] = '\0';
    }
    call->status = p->status;
    call->status_message = msg ? msg : "";
    if (p->status == GRPC_STATUS_OK && call->response_type) {
        size_t len = 0;
        uint8_t *bytes = p->recv ? cascade__rpc_flatten(p->recv, arena, &len) : NULL;
        call->response =
            bytes ? protobuf_c_message_unpack(call->response_type,
                                              cascade_arena_protobuf_allocator(arena), len, bytes)
                  : NULL;
        if (!call->response)
            set_result(call, GRPC_STATUS_INTERNAL,
                       p->recv ? "malformed response from server" : "server sent no response",
                       arena);
    }
}

static void pending_cleanup(struct pending *p)
{
    if (p->gcall)
        grpc_call_unref(p->gcall);
    if (p->send)
        grpc_byte_buffer_destroy(p->send);
    if (p->recv)
        grpc_byte_buffer_destroy(p->recv);
    if (p->started)
        grpc_slice_unref(p->details);
    for (size_t i = 0; i < p->n_request_md; i++)
        grpc_slice_unref(p->request_md[i].value);
    grpc_metadata_array_destroy(&p->initial_md);
    grpc_metadata_array_destroy(&p->trailing_md);
}

static size_t run_calls(struct cascade_rpc_call *calls, size_t n, const grpc_byte_buffer *raw,
                        cascade_arena *arena)
{
    struct pending *ps = calloc(n ? n : 1, sizeof(*ps));
    size_t ok = 0, outstanding = 0;
    int64_t latest = 0;
    if (!ps) {
        for (size_t i = 0; i < n; i++)
            set_result(&calls[i], GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", arena);
        return 0;
    }
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    for (size_t i = 0; i < n; i++) {
        calls[i].response = NULL;
        calls[i].status = GRPC_STATUS_UNKNOWN;
        calls[i].status_message = "";
        ps[i].call = &calls[i];
        pending_start(&ps[i], cq, raw, arena);
        if (ps[i].started) {
            outstanding++;
            if (calls[i].deadline_ms > latest)
                latest = calls[i].deadline_ms;
        }
    }
    int cancelled = 0;
    while (outstanding > 0) {
        int64_t wait_until =
            latest == INT64_MAX || cancelled ? INT64_MAX : latest + FANOUT_SLACK_MS;
        grpc_event ev =
            grpc_completion_queue_next(cq, cascade__rpc_deadline_to_gpr(wait_until), NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            struct pending *p = ev.tag;
            p->done = 1;
            outstanding--;
        } else if (ev.type == GRPC_QUEUE_TIMEOUT) {
            /* gRPC should have ended them at their deadlines; make sure. */
            for (size_t i = 0; i < n; i++)
                if (ps[i].started && !ps[i].done)
                    grpc_call_cancel_with_status(ps[i].gcall, GRPC_STATUS_DEADLINE_EXCEEDED,
                                                 "deadline exceeded (client)", NULL);
            cancelled = 1;
        } else {
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pending_finish(&ps[i], arena);
        if (calls[i].status == GRPC_STATUS_OK && (calls[i].response || !calls[i].response_type))
            ok++;
        pending_cleanup(&ps[i]);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    free(ps);
    return ok;
}

static int status_to_code(grpc_status_code s)
{
    switch (s) {
    case GRPC_STATUS_OK:
        return 0;
    case GRPC_STATUS_INVALID_ARGUMENT:
        return CASCADE_EINVAL;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return CASCADE_ETIMEDOUT;
    case GRPC_STATUS_NOT_FOUND:
        return CASCADE_ENOTFOUND;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return CASCADE_ETOOBIG;
    case GRPC_STATUS_CANCELLED:
        return CASCADE_ECANCELLED;
    case GRPC_STATUS_UNIMPLEMENTED:
        return CASCADE_EUNIMPLEMENTED;
    case GRPC_STATUS_UNAVAILABLE:
        return CASCADE_EUNAVAILABLE;
    default:
        return CASCADE_EINTERNAL;
    }
}

int cascade_rpc_call_unary(struct cascade_rpc_call *call, cascade_arena *arena)
{
    run_calls(call, 1, NULL, arena);
    return status_to_code(call->status);
}

size_t cascade_rpc_fanout(struct cascade_rpc_call *calls, size_t n, cascade_arena *arena)
{
    return run_calls(calls, n, NULL, arena);
}

int cascade_rpc_call_raw(struct cascade_rpc_call *call, const void *body, size_t len,
                         cascade_arena *arena)
{
    grpc_slice slice = grpc_slice_from_copied_buffer(body, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    const ProtobufCMessageDescriptor *saved = call->response_type;
    call->response_type = NULL; /* the reply, if any, is not decoded */
    run_calls(call, 1, bb, arena);
    call->response_type = saved;
    grpc_byte_buffer_destroy(bb);
    return status_to_code(call->status);
}

int cascade_rpc_health_check(cascade_rpc_channel *ch, const char *service, int64_t deadline_ms,
                             int *serving_status, char *err, size_t errlen)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    struct cascade_rpc_call call = {0};
    call.channel = ch;
    call.method = "/grpc.health.v1.Health/Check";
    call.request = &req.base;
    call.response_type = &grpc__health__v1__health_check_response__descriptor;
    call.deadline_ms = deadline_ms;
    cascade_arena *arena = cascade_arena_create(4096);
    if (!arena) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    int rc = cascade_rpc_call_unary(&call, arena);
    if (rc == 0) {
        *serving_status = ((Grpc__Health__V1__HealthCheckResponse *)call.response)->status;
    } else {
        snprintf(err, errlen, "%s: %s: %s", ch->target, cascade_grpc_status_name(call.status),
                 call.status_message);
    }
    cascade_arena_destroy(arena);
    return rc;
}
