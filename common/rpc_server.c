/* The RPC server over gRPC C core: worker threads, each draining its own
 * completion queue with pre-posted calls for every registered method; unary
 * handlers run synchronously on the worker; grpc.health.v1.Health Check and
 * Watch are built in, and so is gRPC server reflection (grpc.reflection.v1
 * and v1alpha ServerReflectionInfo, a bidirectional stream answered from the
 * embedded descriptor set, reflection.c); unknown methods get UNIMPLEMENTED.
 * See rpc.h. */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "error.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "reflection.h"
#include "rpc.h"
#include "rpc_internal.h"

#define DEFAULT_CALLS_PER_METHOD 1
#define DEFAULT_MAX_MESSAGE ((size_t)4 << 20)
#define DEFAULT_MAX_METADATA ((size_t)64 << 10)
#define DEFAULT_ARENA_LIMIT ((size_t)256 << 20)
#define HEALTH_CHECK_PATH "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH_PATH "/grpc.health.v1.Health/Watch"
#define REFLECTION_V1_PATH "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define REFLECTION_V1ALPHA_PATH "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define N_BUILTIN_METHODS 4 /* health Check and Watch, reflection v1 and v1alpha */
#define N_GRPC_STATUS 17    /* OK .. UNAUTHENTICATED */

enum slot_kind { SLOT_UNARY, SLOT_UNKNOWN_METHOD, SLOT_WATCH, SLOT_REFLECTION };
enum slot_state {
    ST_REQUESTED,
    ST_SENDING,
    ST_WATCH_IDLE,
    ST_WATCH_SENDING,
    ST_WATCH_FINISHING,
    ST_WATCH_DONE,
    ST_STREAM_READING,  /* reflection: waiting for the next request (and the last answer's send) */
    ST_STREAM_FINISHING /* reflection: the final status is going out */
};
/* How a registered method is served: one message each way on a worker, the
 * health Watch stream, or the reflection stream. */
enum method_kind { METHOD_UNARY, METHOD_WATCH, METHOD_REFLECTION };

struct worker;

/* A tag handed to gRPC: which slot, and which of its batches completed. */
struct slot_tag {
    struct call_slot *slot;
    int is_close; /* the RECV_CLOSE_ON_SERVER batch of a Watch call */
};

/* One pre-posted call and everything gRPC writes into while serving it. */
struct call_slot {
    struct worker *worker;
    enum slot_kind kind;
    int method; /* index into server->methods for SLOT_UNARY / SLOT_WATCH */
    enum slot_state state;
    struct slot_tag tag_main;
    struct slot_tag tag_close;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_call_details details;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *response;
    grpc_slice status_details;
    int status_details_set;
    int cancelled;
    /* The call arrived without a message (the client cancelled it, or closed
     * its side without sending one): it is counted once the reply batch says
     * which (see slot_count_no_message). */
    int no_message;
    int64_t started_us;
    /* Watch calls only (guarded by server->watch_mu). */
    int watch_last_sent;     /* status last sent, -1 before the first message */
    int watch_service_known; /* the watched name is "" or ours */
    int watch_md_sent;       /* initial metadata went out with the first message */
    int watch_closed;        /* the client side ended (RECV_CLOSE_ON_SERVER fired) */
    struct call_slot *watch_next;
    /* Reflection streams only: initial metadata went out. */
    int stream_md_sent;
};

struct method_entry {
    struct cascade_rpc_method m;
    void *handle;
    int builtin; /* health Check/Watch: served by the runtime itself, no token asked */
    enum method_kind kind;
    /* Metrics (NULL without a registry): the latency series, and the request
     * counter per status code, looked up on first use and then cached. */
    cascade_metric *latency;
    _Atomic(cascade_metric *) requests[N_GRPC_STATUS];
};

struct worker {
    struct cascade_rpc_server *server;
    int index;
    grpc_completion_queue *cq;
    pthread_t thread;
    int thread_started;
    cascade_arena *arena;
};

struct cascade_rpc_server {
    char listen_addr[256];
    char listen_unix[CASCADE_UNIX_PATH_MAX + sizeof("unix:")]; /* "unix:PATH", or "" */
    char service_name[128];
    int threads;
    int calls_per_method;
    size_t max_message_bytes;
    size_t max_metadata_bytes;
    size_t arena_limit;
    struct method_entry *methods;
    size_t n_methods;
    void *service;
    grpc_server *server;
    grpc_completion_queue *shutdown_cq;
    struct worker *workers;
    int port;
    int started;
    int stopped;
    atomic_int serving; /* grpc.health.v1 ServingStatus */
    atomic_int shutting_down;
    /* Worker completion queues are shut down under the write side, and every
     * event is handled under the read side: once cq_closed is set no batch
     * starts (gRPC aborts on a batch for a shut-down queue, which a call whose
     * client went away can otherwise reach after the server's shutdown
     * notification). */
    pthread_rwlock_t cq_lock;
    atomic_int cq_closed;
    pthread_mutex_t watch_mu;
    struct call_slot *watchers;
    cascade_metric_family *requests_family; /* NULL without a registry */
    cascade_metric *in_flight;
    /* "Bearer <token>" every non-health call must carry; "" = no check. */
    char auth_header[sizeof("Bearer ") + CASCADE__RPC_TOKEN_MAX];
    /* TLS PEMs (malloc'ed; NULL = plaintext / no client certificate asked). */
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    /* The reflection index over the embedded descriptor set, listing the
     * services this server registered (read-only once created). */
    cascade_reflection *reflection;
};

struct cascade_rpc_ctx {
    cascade_arena *arena;
    int64_t deadline_ms;
    const char *request_id;
    const char *method;
    int thread_index;
    grpc_call *call;               /* for the peer address */
    const grpc_metadata_array *md; /* the caller's metadata */
    char message[512];
};

/* ------------------------------------------------------------- ctx accessors */

cascade_arena *cascade_rpc_ctx_arena(cascade_rpc_ctx *ctx)
{
    return ctx->arena;
}

int64_t cascade_rpc_ctx_deadline_ms(const cascade_rpc_ctx *ctx)
{
    return ctx->deadline_ms;
}

bool cascade_rpc_ctx_expired(const cascade_rpc_ctx *ctx)
{
    return ctx->deadline_ms != INT64_MAX && cascade_now_ms() >= ctx->deadline_ms;
}

const char *cascade_rpc_ctx_request_id(const cascade_rpc_ctx *ctx)
{
    return ctx->request_id;
}

const char *cascade_rpc_ctx_method(const cascade_rpc_ctx *ctx)
{
    return ctx->method;
}

const char *cascade_rpc_ctx_metadata(cascade_rpc_ctx *ctx, const char *key)
{
    if (ctx->md == NULL)
        return "";
    return cascade__rpc_metadata_get(ctx->md, key, ctx->arena);
}

const char *cascade_rpc_ctx_peer(cascade_rpc_ctx *ctx)
{
    if (ctx->call == NULL)
        return "";
    char *peer = grpc_call_get_peer(ctx->call);
    const char *copy = cascade_arena_strdup(ctx->arena, peer ? peer : "");
    gpr_free(peer);
    return copy ? copy : "";
}

int cascade_rpc_ctx_thread_index(const cascade_rpc_ctx *ctx)
{
    return ctx->thread_index;
}

int cascade_rpc_ctx_fail(cascade_rpc_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof(ctx->message), fmt, ap);
    va_end(ap);
    return code < 0 ? code : CASCADE_EINTERNAL;
}

/* -------------------------------------------------------------------- slots */

static void slot_reset(struct call_slot *s)
{
    if (s->call) {
        grpc_call_unref(s->call);
        s->call = NULL;
    }
    grpc_metadata_array_destroy(&s->request_md);
    grpc_metadata_array_init(&s->request_md);
    if (s->kind == SLOT_UNKNOWN_METHOD) {
        grpc_call_details_destroy(&s->details);
        grpc_call_details_init(&s->details);
    }
    if (s->payload) {
        grpc_byte_buffer_destroy(s->payload);
        s->payload = NULL;
    }
    if (s->response) {
        grpc_byte_buffer_destroy(s->response);
        s->response = NULL;
    }
    if (s->status_details_set) {
        grpc_slice_unref(s->status_details);
        s->status_details_set = 0;
    }
    s->cancelled = 0;
    s->no_message = 0;
    s->watch_closed = 0;
    s->watch_md_sent = 0;
    s->watch_last_sent = -1;
    s->stream_md_sent = 0;
}

static void slot_free(struct call_slot *s)
{
    slot_reset(s);
    grpc_metadata_array_destroy(&s->request_md);
    if (s->kind == SLOT_UNKNOWN_METHOD)
        grpc_call_details_destroy(&s->details);
    free(s);
}

/* Ask gRPC for the next call of this slot's method. Returns 0 or -1 (the
 * server is shutting down; the slot is freed). */
static int slot_request(struct call_slot *s)
{
    struct cascade_rpc_server *srv = s->worker->server;
    grpc_call_error e;
    if (atomic_load(&srv->shutting_down)) {
        slot_free(s);
        return -1;
    }
    s->state = ST_REQUESTED;
    if (s->kind == SLOT_UNKNOWN_METHOD) {
        e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->request_md,
                                     s->worker->cq, s->worker->cq, &s->tag_main);
    } else {
        /* A stream method is registered without a payload (it reads its
         * messages itself), and gRPC wants no payload pointer then. */
        e = grpc_server_request_registered_call(srv->server, srv->methods[s->method].handle,
                                                &s->call, &s->deadline, &s->request_md,
                                                s->kind == SLOT_REFLECTION ? NULL : &s->payload,
                                                s->worker->cq, s->worker->cq, &s->tag_main);
    }
    if (e != GRPC_CALL_OK) {
        CASCADE_ERROR(NULL, "rpc: cannot post a call: %s", grpc_call_error_to_string(e));
        slot_free(s);
        return -1;
    }
    return 0;
}

static struct call_slot *slot_new(struct worker *w, enum slot_kind kind, int method)
{
    struct call_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->worker = w;
    s->kind = kind;
    s->method = method;
    s->tag_main.slot = s;
    s->tag_close.slot = s;
    s->tag_close.is_close = 1;
    s->watch_last_sent = -1;
    grpc_metadata_array_init(&s->request_md);
    if (kind == SLOT_UNKNOWN_METHOD)
        grpc_call_details_init(&s->details);
    return s;
}

/* grpc_call_start_batch, unless the worker queues are shut down (then
 * GRPC_CALL_ERROR: the caller recycles the slot as for any refused batch).
 * Called with cq_lock held for reading (a worker event, or a status push). */
static grpc_call_error slot_start_batch(struct call_slot *s, const grpc_op *ops, size_t n,
                                        void *tag)
{
    if (atomic_load(&s->worker->server->cq_closed))
        return GRPC_CALL_ERROR;
    return grpc_call_start_batch(s->call, ops, n, tag, NULL);
}

/* Start the final batch of a unary call: initial metadata, the response (if
 * any), the status, and the close notification. */
static void slot_send_unary_reply(struct call_slot *s, grpc_status_code status, const char *message)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
    if (s->response && status == GRPC_STATUS_OK) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = s->response;
        n++;
    }
    s->status_details = grpc_slice_from_copied_string(message ? message : "");
    s->status_details_set = 1;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n].data.send_status_from_server.status_details = &s->status_details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &s->cancelled;
    n++;
    s->state = ST_SENDING;
    grpc_call_error e = slot_start_batch(s, ops, n, &s->tag_main);
    if (e != GRPC_CALL_OK) {
        if (!atomic_load(&s->worker->server->cq_closed))
            CASCADE_ERROR(NULL, "rpc: cannot send reply: %s", grpc_call_error_to_string(e));
        /* No completion will come for this batch: recycle the slot now (a
         * Watch slot is not reused: its successor is posted already). */
        if (s->kind == SLOT_WATCH) {
            slot_free(s);
            return;
        }
        slot_reset(s);
        slot_request(s);
    }
}

/* --------------------------------------------------------------- decoding */

/* Decode a call's request message into the worker's arena. Returns
 * GRPC_STATUS_OK with *request set, or the status to answer with and a
 * message (static or arena) in *message. The server's max_message_bytes is
 * also gRPC's receive limit (set in cascade_rpc_server_start), so gRPC itself
 * refuses larger messages with RESOURCE_EXHAUSTED before a call is published;
 * the check here only guards that invariant. */
static grpc_status_code decode_request(struct worker *w, const struct call_slot *s,
                                       const ProtobufCMessageDescriptor *type,
                                       ProtobufCMessage **request, const char **message)
{
    struct cascade_rpc_server *srv = w->server;
    size_t len = 0;
    uint8_t *bytes;
    *request = NULL;
    if (!s->payload) {
        *message = "request carries no message";
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    if (grpc_byte_buffer_length(s->payload) > srv->max_message_bytes) {
        *message =
            cascade_arena_printf(w->arena, "request of %zu bytes exceeds the %zu-byte limit",
                                 grpc_byte_buffer_length(s->payload), srv->max_message_bytes);
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    bytes = cascade__rpc_flatten(s->payload, w->arena, &len);
    if (!bytes) {
        *message = "request does not fit the per-request memory limit";
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    *request =
        protobuf_c_message_unpack(type, cascade_arena_protobuf_allocator(w->arena), len, bytes);
    if (!*request) {
        *message = cascade_arena_printf(w->arena, "malformed request: not a valid %s (%zu bytes)",
                                        type->name, len);
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    return GRPC_STATUS_OK;
}

/* ------------------------------------------------------------------- health */

static int health_status_for(struct cascade_rpc_server *srv, const char *service)
{
    if (service[0] == '\0' || strcmp(service, srv->service_name) == 0)
        return atomic_load(&srv->serving);
    return -1;
}

static int health_check_handler(void *service, cascade_rpc_ctx *ctx,
                                const ProtobufCMessage *request, ProtobufCMessage **response)
{
    struct cascade_rpc_server *srv = service;
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    int status = health_status_for(srv, req->service ? req->service : "");
    if (status < 0)
        return cascade_rpc_ctx_fail(ctx, CASCADE_ENOTFOUND, "unknown service \"%s\"", req->service);
    Grpc__Health__V1__HealthCheckResponse *resp = cascade_arena_alloc(ctx->arena, sizeof(*resp));
    if (!resp)
        return cascade_rpc_ctx_fail(ctx, CASCADE_ENOMEM, "out of memory");
    grpc__health__v1__health_check_response__init(resp);
    resp->status = status;
    *response = &resp->base;
    return 0;
}

/* Health Watch: a server-streaming call that gets the current status at once
 * and again whenever it changes; the stream ends (status OK) at shutdown. All
 * watcher state is guarded by srv->watch_mu because status changes arrive
 * from other threads. */

static void watch_unlink_locked(struct cascade_rpc_server *srv, struct call_slot *s)
{
    for (struct call_slot **pp = &srv->watchers; *pp; pp = &(*pp)->watch_next) {
        if (*pp == s) {
            *pp = s->watch_next;
            return;
        }
    }
}

/* Bring one watcher up to date. Caller holds watch_mu. */
static void watch_push_locked(struct call_slot *s)
{
    struct cascade_rpc_server *srv = s->worker->server;
    grpc_op ops[3];
    size_t n = 0;
    if (s->state != ST_WATCH_IDLE || s->watch_closed)
        return;
    int status = s->watch_service_known
                     ? atomic_load(&srv->serving)
                     : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    memset(ops, 0, sizeof(ops));
    if (!s->watch_md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        s->watch_md_sent = 1;
    }
    if (status != s->watch_last_sent) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = status;
        if (s->response)
            grpc_byte_buffer_destroy(s->response);
        s->response = cascade__rpc_pack(&resp.base);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = s->response;
        n++;
        s->watch_last_sent = status;
        s->state = ST_WATCH_SENDING;
    } else if (atomic_load(&srv->shutting_down)) {
        s->status_details = grpc_slice_from_static_string("server shutting down");
        s->status_details_set = 1;
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[n].data.send_status_from_server.status_details = &s->status_details;
        n++;
        s->state = ST_WATCH_FINISHING;
    } else {
        return;
    }
    if (slot_start_batch(s, ops, n, &s->tag_main) != GRPC_CALL_OK) {
        /* The call is unusable; treat it as closed and let the close tag free it. */
        s->state = ST_WATCH_DONE;
    }
}

static void watch_push_all(struct cascade_rpc_server *srv)
{
    pthread_rwlock_rdlock(&srv->cq_lock);
    pthread_mutex_lock(&srv->watch_mu);
    for (struct call_slot *s = srv->watchers; s; s = s->watch_next)
        watch_push_locked(s);
    pthread_mutex_unlock(&srv->watch_mu);
    pthread_rwlock_unlock(&srv->cq_lock);
}

/* A Watch call arrived: register it and send the first status. A request
 * that does not decode is refused as Check refuses it (INVALID_ARGUMENT); its
 * reply batch completes through watch_event in state ST_SENDING. */
static void watch_begin(struct call_slot *s)
{
    struct cascade_rpc_server *srv = s->worker->server;
    const char *service = "", *message = "";
    ProtobufCMessage *request = NULL;
    cascade_arena_reset(s->worker->arena);
    grpc_status_code status = decode_request(
        s->worker, s, &grpc__health__v1__health_check_request__descriptor, &request, &message);
    if (status != GRPC_STATUS_OK) {
        slot_send_unary_reply(s, status, message);
        return;
    }
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    if (req->service)
        service = req->service;
    s->watch_service_known = health_status_for(srv, service) >= 0;

    pthread_mutex_lock(&srv->watch_mu);
    s->watch_next = srv->watchers;
    srv->watchers = s;
    grpc_op close_op;
    memset(&close_op, 0, sizeof(close_op));
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &s->cancelled;
    if (slot_start_batch(s, &close_op, 1, &s->tag_close) != GRPC_CALL_OK) {
        watch_unlink_locked(srv, s);
        pthread_mutex_unlock(&srv->watch_mu);
        slot_free(s);
        return;
    }
    s->state = ST_WATCH_IDLE;
    watch_push_locked(s);
    pthread_mutex_unlock(&srv->watch_mu);
}

static void watch_event(struct call_slot *s, int is_close, int ok)
{
    struct cascade_rpc_server *srv = s->worker->server;
    if (s->state == ST_REQUESTED) {
        if (!ok) {
            slot_free(s);
            return;
        }
        /* Keep a call posted for the next watcher before serving this one. */
        struct call_slot *next = slot_new(s->worker, SLOT_WATCH, s->method);
        if (next)
            slot_request(next);
        watch_begin(s);
        return;
    }
    if (s->state == ST_SENDING) { /* the refusal of a malformed Watch went out */
        slot_free(s);
        return;
    }
    pthread_mutex_lock(&srv->watch_mu);
    if (is_close) {
        s->watch_closed = 1;
    } else if (s->state == ST_WATCH_SENDING) {
        s->state = ok ? ST_WATCH_IDLE : ST_WATCH_DONE;
    } else if (s->state == ST_WATCH_FINISHING) {
        s->state = ST_WATCH_DONE;
    }
    int busy = s->state == ST_WATCH_SENDING || s->state == ST_WATCH_FINISHING;
    if (s->watch_closed && !busy) {
        watch_unlink_locked(srv, s);
        pthread_mutex_unlock(&srv->watch_mu);
        slot_free(s);
        return;
    }
    if (!s->watch_closed)
        watch_push_locked(s);
    pthread_mutex_unlock(&srv->watch_mu);
}

/* ------------------------------------------------------------------ metrics */

/* The method label: the path without its leading '/'. */
static const char *method_label(const struct method_entry *me)
{
    return me->m.path[0] == '/' ? me->m.path + 1 : me->m.path;
}

/* Register the RPC families and pre-create each method's latency series and
 * its OK counter (so rates start from 0). Other codes are created on first use. */
static int metrics_init(struct cascade_rpc_server *srv, cascade_metrics *m, char *err,
                        size_t errlen)
{
    cascade_metric_family *latency = cascade_metrics_histogram(
        m, "cascade_rpc_latency_seconds",
        "Time a unary RPC spent in the server: decode, handler and encode.", "method", NULL, 0);
    cascade_metric_family *in_flight = cascade_metrics_gauge(
        m, "cascade_rpc_in_flight", "Unary RPCs being served right now.", NULL);
    cascade_metric_family *workers = cascade_metrics_gauge(
        m, "cascade_rpc_worker_threads",
        "Worker threads serving RPCs (--threads, or one per core), fixed at start.", NULL);
    srv->requests_family = cascade_metrics_counter(
        m, "cascade_rpc_requests_total", "Unary RPCs served, by method and gRPC status code.",
        "method,code");
    if (!latency || !in_flight || !workers || !srv->requests_family) {
        snprintf(err, errlen, "rpc server: cannot register the RPC metrics");
        return CASCADE_EINVAL;
    }
    srv->in_flight = cascade_metric_get(in_flight, NULL);
    cascade_metric *worker_threads = cascade_metric_get(workers, NULL);
    if (!worker_threads) {
        snprintf(err, errlen, "rpc server: out of memory creating metrics");
        return CASCADE_ENOMEM;
    }
    cascade_metric_set(worker_threads, srv->threads);
    for (size_t i = 0; i < srv->n_methods; i++) {
        struct method_entry *me = &srv->methods[i];
        if (me->kind != METHOD_UNARY)
            continue; /* a stream, not served by serve_unary */
        const char *labels[] = {method_label(me), "OK"};
        me->latency = cascade_metric_get(latency, labels);
        atomic_store(&me->requests[GRPC_STATUS_OK],
                     cascade_metric_get(srv->requests_family, labels));
        if (!me->latency || !srv->in_flight || !atomic_load(&me->requests[GRPC_STATUS_OK])) {
            snprintf(err, errlen, "rpc server: out of memory creating metrics");
            return CASCADE_ENOMEM;
        }
    }
    return 0;
}

/* Count one finished call and its time. Lock-free once the (method, code)
 * counter is cached; two threads racing to cache get the same series. */
static void metrics_record(struct cascade_rpc_server *srv, struct method_entry *me,
                           grpc_status_code status, int64_t started_us)
{
    if (!srv->requests_family)
        return;
    int code = (int)status >= 0 && (int)status < N_GRPC_STATUS ? (int)status : GRPC_STATUS_UNKNOWN;
    cascade_metric *counter = atomic_load_explicit(&me->requests[code], memory_order_acquire);
    if (!counter) {
        const char *labels[] = {method_label(me), cascade_grpc_status_name((grpc_status_code)code)};
        counter = cascade_metric_get(srv->requests_family, labels);
        atomic_store_explicit(&me->requests[code], counter, memory_order_release);
    }
    cascade_metric_inc(counter);
    cascade_metric_observe(me->latency, (double)(cascade_now_us() - started_us) / 1e6);
}

/* -------------------------------------------------------------- unary calls */

/* True when the call may proceed: no token is configured, the method is the
 * health service, or its "authorization" metadata is exactly the configured
 * "Bearer <token>". Compared in constant time for equal lengths, so the
 * answer's timing does not reveal how much of a guess matched. */
static bool call_authorized(const struct cascade_rpc_server *srv, const struct method_entry *me,
                            const grpc_metadata_array *md)
{
    if (!srv->auth_header[0] || me->builtin)
        return true;
    size_t want = strlen(srv->auth_header);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) != strlen("authorization") ||
            memcmp(GRPC_SLICE_START_PTR(*k), "authorization", strlen("authorization")) != 0)
            continue;
        const grpc_slice *v = &md->metadata[i].value;
        if (GRPC_SLICE_LENGTH(*v) != want)
            return false;
        const unsigned char *got = GRPC_SLICE_START_PTR(*v);
        unsigned char diff = 0;
        for (size_t j = 0; j < want; j++)
            diff |= (unsigned char)(got[j] ^ (unsigned char)srv->auth_header[j]);
        return diff == 0;
    }
    return false;
}

static void serve_unary(struct call_slot *s)
{
    struct worker *w = s->worker;
    struct cascade_rpc_server *srv = w->server;
    struct method_entry *me = &srv->methods[s->method];
    int64_t started_us = cascade_now_us();
    grpc_status_code status = GRPC_STATUS_OK;
    const char *message = "";
    cascade_rpc_ctx ctx;
    ProtobufCMessage *request = NULL, *response = NULL;

    cascade_arena_reset(w->arena);
    cascade_metric_add(srv->in_flight, 1);
    memset(&ctx, 0, sizeof(ctx));
    ctx.arena = w->arena;
    ctx.deadline_ms = cascade__rpc_deadline_from_gpr(s->deadline);
    ctx.request_id = cascade__rpc_metadata_get(&s->request_md, "x-request-id", w->arena);
    ctx.method = me->m.path;
    ctx.thread_index = w->index;
    ctx.call = s->call;
    ctx.md = &s->request_md;

    if (!call_authorized(srv, me, &s->request_md)) {
        status = GRPC_STATUS_UNAUTHENTICATED;
        message = "missing or wrong bearer token (metadata authorization: Bearer <token>)";
        goto reply;
    }
    if (!s->payload) {
        /* Counted when the reply batch completes: cancelled or not. */
        s->no_message = 1;
        s->started_us = started_us;
        cascade_metric_add(srv->in_flight, -1);
        slot_send_unary_reply(s, GRPC_STATUS_INVALID_ARGUMENT, "request carries no message");
        return;
    }
    status = decode_request(w, s, me->m.request_type, &request, &message);
    if (status != GRPC_STATUS_OK)
        goto reply;
    if (cascade_rpc_ctx_expired(&ctx)) {
        status = GRPC_STATUS_DEADLINE_EXCEEDED;
        message = "deadline passed before the request was served";
        goto reply;
    }

    int rc = me->m.handler(me->builtin ? (void *)srv : srv->service, &ctx, request, &response);
    if (rc == 0 && response && response->descriptor == me->m.response_type) {
        s->response = cascade__rpc_pack(response);
    } else if (rc == 0) {
        status = GRPC_STATUS_INTERNAL;
        message = "handler returned no response";
        CASCADE_ERROR(ctx.request_id, "%s: handler returned no or a mistyped response", me->m.path);
    } else {
        status = cascade_error_to_grpc(rc);
        message = ctx.message[0] ? ctx.message : cascade_strerror(rc);
        if (status == GRPC_STATUS_INTERNAL || status == GRPC_STATUS_UNAVAILABLE)
            CASCADE_WARN(ctx.request_id, "%s: %s: %s", me->m.path, cascade_grpc_status_name(status),
                         message);
        else
            CASCADE_DEBUG(ctx.request_id, "%s: %s: %s", me->m.path,
                          cascade_grpc_status_name(status), message);
    }
reply:
    metrics_record(srv, me, status, started_us);
    cascade_metric_add(srv->in_flight, -1);
    slot_send_unary_reply(s, status, message);
}

/* A call that arrived without a message was either cancelled by its client
 * (or by its deadline) before the message came, or the client closed its
 * side without one. The reply batch's RECV_CLOSE_ON_SERVER tells which. */
static void slot_count_no_message(struct call_slot *s)
{
    struct cascade_rpc_server *srv = s->worker->server;
    grpc_status_code status = GRPC_STATUS_INVALID_ARGUMENT;
    if (s->cancelled)
        status = cascade__rpc_deadline_from_gpr(s->deadline) <= cascade_now_ms()
                     ? GRPC_STATUS_DEADLINE_EXCEEDED
                     : GRPC_STATUS_CANCELLED;
    metrics_record(srv, &srv->methods[s->method], status, s->started_us);
}

/* ------------------------------------------------------- reflection streams */

/* A reflection stream keeps one batch in flight at a time: {initial metadata
 * (first time), the previous answer (if any), receive the next request}, and
 * at the end {status, receive close}. Each batch completes on the slot's own
 * worker, so a stream needs no lock. Streams are not counted in the RPC
 * metrics (like Watch). */

/* Start a batch for the stream; a batch gRPC refuses ends the call. */
static void reflect_batch(struct call_slot *s, grpc_op *ops, size_t n, enum slot_state next)
{
    s->state = next;
    grpc_call_error e = slot_start_batch(s, ops, n, &s->tag_main);
    if (e != GRPC_CALL_OK) {
        if (!atomic_load(&s->worker->server->cq_closed))
            CASCADE_ERROR(NULL, "rpc: reflection stream: %s", grpc_call_error_to_string(e));
        grpc_call_cancel(s->call, NULL);
        slot_free(s);
    }
}

/* Put SEND_INITIAL_METADATA into ops[0] when the stream has not sent it yet
 * (it goes out with the first batch). Returns the number of ops added. */
static size_t reflect_initial_metadata(struct call_slot *s, grpc_op *ops)
{
    if (s->stream_md_sent)
        return 0;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    s->stream_md_sent = 1;
    return 1;
}

/* End the stream with `status`: OK after the client closed its side, an
 * error for a refused or malformed request. */
static void reflect_finish(struct call_slot *s, grpc_status_code status, const char *message)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    n += reflect_initial_metadata(s, ops);
    s->status_details = grpc_slice_from_copied_string(message);
    s->status_details_set = 1;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n].data.send_status_from_server.status_details = &s->status_details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &s->cancelled;
    n++;
    reflect_batch(s, ops, n, ST_STREAM_FINISHING);
}

/* Send the answer in s->response (if any) and wait for the next request. */
static void reflect_read(struct call_slot *s)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    n += reflect_initial_metadata(s, ops);
    if (s->response) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = s->response;
        n++;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &s->payload;
    n++;
    reflect_batch(s, ops, n, ST_STREAM_READING);
}

/* Answer the request in s->payload (consumed) into s->response. v1alpha and
 * v1 messages are the same on the wire, so both paths decode as v1. */
static void reflect_serve(struct call_slot *s)
{
    struct worker *w = s->worker;
    size_t len = 0;
    cascade_arena_reset(w->arena);
    uint8_t *bytes = cascade__rpc_flatten(s->payload, w->arena, &len);
    grpc_byte_buffer_destroy(s->payload);
    s->payload = NULL;
    if (!bytes) {
        reflect_finish(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "reflection request does not fit the per-request memory limit");
        return;
    }
    ProtobufCMessage *req =
        protobuf_c_message_unpack(&grpc__reflection__v1__server_reflection_request__descriptor,
                                  cascade_arena_protobuf_allocator(w->arena), len, bytes);
    if (!req) {
        reflect_finish(s, GRPC_STATUS_INVALID_ARGUMENT,
                       "malformed request: not a valid ServerReflectionRequest");
        return;
    }
    Grpc__Reflection__V1__ServerReflectionResponse *resp =
        cascade_reflection_answer(w->server->reflection, (const void *)req, w->arena);
    if (resp)
        s->response = cascade__rpc_pack(&resp->base);
    if (!s->response) {
        reflect_finish(s, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "reflection answer does not fit the per-request memory limit");
        return;
    }
    reflect_read(s);
}

static void reflect_event(struct call_slot *s, int ok)
{
    struct cascade_rpc_server *srv = s->worker->server;
    switch (s->state) {
    case ST_REQUESTED:
        if (!ok) { /* the server is shutting down */
            slot_free(s);
            return;
        }
        /* Keep a call posted for the next stream before serving this one. */
        struct call_slot *next = slot_new(s->worker, SLOT_REFLECTION, s->method);
        if (next)
            slot_request(next);
        if (!call_authorized(srv, &srv->methods[s->method], &s->request_md)) {
            reflect_finish(
                s, GRPC_STATUS_UNAUTHENTICATED,
                "missing or wrong bearer token (metadata authorization: Bearer <token>)");
            return;
        }
        reflect_read(s);
        return;
    case ST_STREAM_READING:
        if (s->response) { /* the previous answer went out */
            grpc_byte_buffer_destroy(s->response);
            s->response = NULL;
        }
        if (!ok) { /* the call ended: cancelled, deadline, or server shutdown */
            grpc_call_cancel(s->call, NULL);
            slot_free(s);
        } else if (!s->payload) { /* the client closed its side: done */
            reflect_finish(s, GRPC_STATUS_OK, "");
        } else {
            reflect_serve(s);
        }
        return;
    default: /* ST_STREAM_FINISHING: the status went out (or the call died) */
        slot_free(s);
        return;
    }
}

static void handle_event(struct slot_tag *tag, int ok)
{
    struct call_slot *s = tag->slot;
    if (s->kind == SLOT_WATCH) {
        watch_event(s, tag->is_close, ok);
        return;
    }
    if (s->kind == SLOT_REFLECTION) {
        reflect_event(s, ok);
        return;
    }
    if (s->state == ST_REQUESTED) {
        if (!ok) { /* the server is shutting down */
            slot_free(s);
            return;
        }
        if (s->kind == SLOT_UNKNOWN_METHOD) {
            char msg[300];
            size_t mlen = GRPC_SLICE_LENGTH(s->details.method);
            if (mlen > 200)
                mlen = 200;
            snprintf(msg, sizeof(msg), "unknown method %.*s", (int)mlen,
                     (const char *)GRPC_SLICE_START_PTR(s->details.method));
            slot_send_unary_reply(s, GRPC_STATUS_UNIMPLEMENTED, msg);
        } else {
            serve_unary(s);
        }
        return;
    }
    /* ST_SENDING: the reply went out (or the call died); serve the next one. */
    if (s->no_message)
        slot_count_no_message(s);
    slot_reset(s);
    slot_request(s);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            pthread_rwlock_rdlock(&w->server->cq_lock);
            handle_event(ev.tag, ev.success);
            pthread_rwlock_unlock(&w->server->cq_lock);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ server object */

/* Free the TLS PEMs (the key wiped first). NULL-safe. */
static void free_tls(struct cascade_rpc_server *srv)
{
    if (!srv)
        return;
    if (srv->tls_key)
        memset(srv->tls_key, 0, strlen(srv->tls_key));
    free(srv->tls_key);
    free(srv->tls_cert);
    free(srv->tls_client_ca);
    srv->tls_key = srv->tls_cert = srv->tls_client_ca = NULL;
}

/* Read the TLS files named in opts into srv. 0, or CASCADE_EINVAL with a
 * message (a missing half of cert/key, an unreadable or non-PEM file). */
static int load_tls(struct cascade_rpc_server *srv, const struct cascade_rpc_server_opts *opts,
                    char *err, size_t errlen)
{
    bool cert = opts->tls_cert_file && opts->tls_cert_file[0];
    bool key = opts->tls_key_file && opts->tls_key_file[0];
    bool ca = opts->tls_client_ca_file && opts->tls_client_ca_file[0];
    char why[600];
    if (cert != key) {
        snprintf(err, errlen,
                 "rpc server: TLS needs both a certificate and a key "
                 "(--tls-cert and --tls-key)");
        return CASCADE_EINVAL;
    }
    if (ca && !cert) {
        snprintf(err, errlen,
                 "rpc server: requiring client certificates (--tls-client-ca) "
                 "needs TLS (--tls-cert and --tls-key)");
        return CASCADE_EINVAL;
    }
    if (!cert)
        return 0;
    srv->tls_cert = cascade__rpc_read_pem(opts->tls_cert_file, "TLS certificate", why, sizeof why);
    if (srv->tls_cert)
        srv->tls_key = cascade__rpc_read_pem(opts->tls_key_file, "TLS key", why, sizeof why);
    if (srv->tls_key && ca)
        srv->tls_client_ca =
            cascade__rpc_read_pem(opts->tls_client_ca_file, "TLS client CA", why, sizeof why);
    if (!srv->tls_key || (ca && !srv->tls_client_ca)) {
        snprintf(err, errlen, "rpc server: %s", why);
        free_tls(srv);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* The server's credentials: insecure, TLS, or TLS requiring a client
 * certificate signed by the client CA. NULL when gRPC rejects the PEMs. */
static grpc_server_credentials *server_credentials(const struct cascade_rpc_server *srv)
{
    if (!srv->tls_cert)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {.private_key = srv->tls_key, .cert_chain = srv->tls_cert};
    return grpc_ssl_server_credentials_create_ex(
        srv->tls_client_ca, &pair, 1,
        srv->tls_client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
}

/* The reflection index: the embedded descriptor set, and the services this
 * server registered (from the method paths "/pkg.Service/Method", each once,
 * in registration order). */
static int create_reflection(struct cascade_rpc_server *srv, char *err, size_t errlen)
{
    int rc = CASCADE_ENOMEM;
    const char **names = calloc(srv->n_methods, sizeof(*names));
    size_t n_names = 0;
    if (!names) {
        snprintf(err, errlen, "rpc server: out of memory");
        goto out;
    }
    for (size_t i = 0; i < srv->n_methods; i++) {
        const char *path = srv->methods[i].m.path;
        const char *slash = strchr(path + 1, '/');
        size_t len = slash ? (size_t)(slash - path - 1) : 0;
        bool seen = len == 0;
        for (size_t j = 0; j < n_names && !seen; j++)
            seen = strlen(names[j]) == len && strncmp(names[j], path + 1, len) == 0;
        if (seen)
            continue;
        char *name = strndup(path + 1, len);
        if (!name) {
            snprintf(err, errlen, "rpc server: out of memory");
            goto out;
        }
        names[n_names++] = name;
    }
    srv->reflection = cascade_reflection_create(cascade_reflection_descriptor_set,
                                                cascade_reflection_descriptor_set_len, names,
                                                n_names, err, errlen);
    rc = srv->reflection ? 0 : CASCADE_EINVAL;
out:
    for (size_t j = 0; j < n_names; j++)
        free((char *)names[j]);
    free(names);
    return rc;
}

cascade_rpc_server *cascade_rpc_server_create(const struct cascade_rpc_server_opts *opts,
                                              const struct cascade_rpc_method *methods,
                                              size_t n_methods, void *service, char *err,
                                              size_t errlen)
{
    struct cascade_rpc_server *srv = NULL;
    if (!opts || !opts->listen_addr || !opts->listen_addr[0]) {
        snprintf(err, errlen, "rpc server: no listen address");
        return NULL;
    }
    if (strlen(opts->listen_addr) >= sizeof(srv->listen_addr)) {
        snprintf(err, errlen, "rpc server: listen address too long");
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        goto oom;
    srv->methods = calloc(n_methods + N_BUILTIN_METHODS, sizeof(*srv->methods));
    if (!srv->methods)
        goto oom;
    for (size_t i = 0; i < n_methods; i++) {
        if (!methods[i].path || !methods[i].request_type || !methods[i].response_type ||
            !methods[i].handler) {
            snprintf(err, errlen, "rpc server: method %zu is incomplete", i);
            goto fail;
        }
        srv->methods[i].m = methods[i];
    }
    srv->methods[n_methods].m = (struct cascade_rpc_method){
        HEALTH_CHECK_PATH, &grpc__health__v1__health_check_request__descriptor,
        &grpc__health__v1__health_check_response__descriptor, health_check_handler};
    srv->methods[n_methods].builtin = 1;
    srv->methods[n_methods + 1].m = (struct cascade_rpc_method){
        HEALTH_WATCH_PATH, &grpc__health__v1__health_check_request__descriptor,
        &grpc__health__v1__health_check_response__descriptor, health_check_handler};
    srv->methods[n_methods + 1].builtin = 1;
    srv->methods[n_methods + 1].kind = METHOD_WATCH;
    /* Reflection: v1alpha and v1 share the v1 messages (the same wire format). */
    for (int v = 0; v < 2; v++) {
        struct method_entry *me = &srv->methods[n_methods + 2 + v];
        me->m = (struct cascade_rpc_method){
            v == 0 ? REFLECTION_V1_PATH : REFLECTION_V1ALPHA_PATH,
            &grpc__reflection__v1__server_reflection_request__descriptor,
            &grpc__reflection__v1__server_reflection_response__descriptor, NULL};
        me->kind = METHOD_REFLECTION;
    }
    srv->n_methods = n_methods + N_BUILTIN_METHODS;
    if (create_reflection(srv, err, errlen) != 0)
        goto fail;
    srv->service = service;
    snprintf(srv->listen_addr, sizeof(srv->listen_addr), "%s", opts->listen_addr);
    if (opts->listen_unix && opts->listen_unix[0]) {
        if (!cascade_rpc_unix_path_ok(opts->listen_unix)) {
            snprintf(err, errlen,
                     "rpc server: unix socket \"%s\" must be an absolute path shorter than %d "
                     "bytes",
                     opts->listen_unix, CASCADE_UNIX_PATH_MAX);
            goto fail;
        }
        snprintf(srv->listen_unix, sizeof(srv->listen_unix), "unix:%s", opts->listen_unix);
    }
    snprintf(srv->service_name, sizeof(srv->service_name), "%s",
             opts->service_name ? opts->service_name : "");
    if (opts->auth_token && opts->auth_token[0]) {
        if (cascade__rpc_token_valid(opts->auth_token) != 0) {
            snprintf(err, errlen,
                     "rpc server: the auth token must be 1..%d visible ASCII characters "
                     "(no spaces or control characters)",
                     CASCADE__RPC_TOKEN_MAX);
            goto fail;
        }
        snprintf(srv->auth_header, sizeof(srv->auth_header), "Bearer %s", opts->auth_token);
    }
    if (load_tls(srv, opts, err, errlen) != 0)
        goto fail;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv->threads = opts->threads > 0 ? opts->threads : (cores > 0 ? (int)cores : 1);
    srv->calls_per_method =
        opts->calls_per_method > 0 ? opts->calls_per_method : DEFAULT_CALLS_PER_METHOD;
    srv->max_message_bytes =
        opts->max_message_bytes ? opts->max_message_bytes : DEFAULT_MAX_MESSAGE;
    if (srv->max_message_bytes > INT_MAX) {
        snprintf(err, errlen, "rpc server: max_message_bytes %zu is above gRPC's %d",
                 srv->max_message_bytes, INT_MAX);
        goto fail;
    }
    srv->max_metadata_bytes =
        opts->max_metadata_bytes ? opts->max_metadata_bytes : DEFAULT_MAX_METADATA;
    if (srv->max_metadata_bytes > INT_MAX) {
        snprintf(err, errlen, "rpc server: max_metadata_bytes %zu is above gRPC's %d",
                 srv->max_metadata_bytes, INT_MAX);
        goto fail;
    }
    srv->arena_limit = opts->arena_limit_bytes ? opts->arena_limit_bytes : DEFAULT_ARENA_LIMIT;
    atomic_init(&srv->serving,
                GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    atomic_init(&srv->shutting_down, 0);
    atomic_init(&srv->cq_closed, 0);
    pthread_rwlock_init(&srv->cq_lock, NULL);
    pthread_mutex_init(&srv->watch_mu, NULL);
    if (opts->metrics && metrics_init(srv, opts->metrics, err, errlen) != 0) {
        pthread_mutex_destroy(&srv->watch_mu);
        pthread_rwlock_destroy(&srv->cq_lock);
        goto fail;
    }
    return srv;
oom:
    snprintf(err, errlen, "rpc server: out of memory");
fail:
    free_tls(srv);
    if (srv) {
        cascade_reflection_destroy(srv->reflection);
        free(srv->methods);
    }
    free(srv);
    return NULL;
}

static int post_initial_calls(struct cascade_rpc_server *srv, struct worker *w)
{
    for (size_t m = 0; m < srv->n_methods; m++) {
        enum method_kind kind = srv->methods[m].kind;
        enum slot_kind slot_kind = kind == METHOD_WATCH        ? SLOT_WATCH
                                   : kind == METHOD_REFLECTION ? SLOT_REFLECTION
                                                               : SLOT_UNARY;
        /* A stream slot posts its successor when a call arrives. */
        int count = kind == METHOD_UNARY ? srv->calls_per_method : 2;
        for (int i = 0; i < count; i++) {
            struct call_slot *s = slot_new(w, slot_kind, (int)m);
            if (!s || slot_request(s) != 0)
                return -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        struct call_slot *s = slot_new(w, SLOT_UNKNOWN_METHOD, -1);
        if (!s || slot_request(s) != 0)
            return -1;
    }
    return 0;
}

/* gRPC refuses to destroy a server that holds a listener it never started
 * (the TCP one, when the Unix socket then failed): start it and shut it
 * down at once, before any call is posted, so destroy finds it closed. */
static void close_unstarted_listeners(cascade_rpc_server *srv)
{
    int tag;
    grpc_server_start(srv->server);
    grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, &tag);
    while (grpc_completion_queue_next(srv->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .tag != &tag) {
    }
}

int cascade_rpc_server_start(cascade_rpc_server *srv, char *err, size_t errlen)
{
    grpc_arg args[4];
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_MAX_METADATA_SIZE;
    args[3].value.integer = (int)srv->max_metadata_bytes;
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    /* gRPC answers larger requests RESOURCE_EXHAUSTED itself ("Received
     * message larger than max (N vs. LIMIT)"); they never reach a worker. */
    args[0].value.integer = (int)srv->max_message_bytes;
    /* Without this, a second server could bind the same port silently. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[2].value.integer = -1;
    grpc_channel_args channel_args = {4, args};

    srv->server = grpc_server_create(&channel_args, NULL);
    srv->shutdown_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->shutdown_cq, NULL);
    srv->workers = calloc((size_t)srv->threads, sizeof(*srv->workers));
    if (!srv->workers) {
        snprintf(err, errlen, "rpc server: out of memory");
        return CASCADE_ENOMEM;
    }
    for (int i = 0; i < srv->threads; i++) {
        struct worker *w = &srv->workers[i];
        w->server = srv;
        w->index = i;
        w->cq = grpc_completion_queue_create_for_next(NULL);
        w->arena = cascade_arena_create(0);
        if (!w->arena) {
            snprintf(err, errlen, "rpc server: out of memory");
            return CASCADE_ENOMEM;
        }
        cascade_arena_set_limit(w->arena, srv->arena_limit);
        grpc_server_register_completion_queue(srv->server, w->cq, NULL);
    }
    for (size_t m = 0; m < srv->n_methods; m++) {
        /* A reflection stream reads its messages itself (RECV_MESSAGE). */
        grpc_server_register_method_payload_handling payload =
            srv->methods[m].kind == METHOD_REFLECTION ? GRPC_SRM_PAYLOAD_NONE
                                                      : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER;
        srv->methods[m].handle =
            grpc_server_register_method(srv->server, srv->methods[m].m.path, NULL, payload, 0);
        if (!srv->methods[m].handle) {
            snprintf(err, errlen, "rpc server: cannot register method %s", srv->methods[m].m.path);
            return CASCADE_EINVAL;
        }
    }
    grpc_server_credentials *creds = server_credentials(srv);
    if (!creds) {
        snprintf(err, errlen,
                 "rpc server: cannot create TLS credentials (bad certificate or key?)");
        return CASCADE_EINVAL;
    }
    srv->port = grpc_server_add_http2_port(srv->server, srv->listen_addr, creds);
    int unix_ok =
        !srv->listen_unix[0] ||
        (srv->port != 0 && grpc_server_add_http2_port(srv->server, srv->listen_unix, creds));
    grpc_server_credentials_release(creds);
    if (srv->port == 0) {
        snprintf(err, errlen, "listen %s: cannot bind (address in use, or not a host:port)",
                 srv->listen_addr);
        return CASCADE_EIO;
    }
    if (!unix_ok) {
        snprintf(err, errlen,
                 "listen %s: cannot bind (its directory missing or not writable, or in use)",
                 srv->listen_unix);
        close_unstarted_listeners(srv);
        return CASCADE_EIO;
    }
    grpc_server_start(srv->server);
    srv->started = 1;
    for (int i = 0; i < srv->threads; i++) {
        if (post_initial_calls(srv, &srv->workers[i]) != 0) {
            snprintf(err, errlen, "rpc server: cannot post calls");
            return CASCADE_EINTERNAL;
        }
    }
    for (int i = 0; i < srv->threads; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
            snprintf(err, errlen, "rpc server: cannot start worker thread %d", i);
            return CASCADE_EINTERNAL;
        }
        srv->workers[i].thread_started = 1;
    }
    cascade_rpc_server_set_serving(srv, true);
    return 0;
}

int cascade_rpc_server_port(const cascade_rpc_server *srv)
{
    return srv->port;
}

void cascade_rpc_server_set_serving(cascade_rpc_server *srv, bool serving)
{
    atomic_store(&srv->serving,
                 serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                         : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    watch_push_all(srv);
}

void cascade_rpc_server_shutdown(cascade_rpc_server *srv, int grace_ms)
{
    if (!srv || !srv->started || srv->stopped)
        return;
    srv->stopped = 1;
    atomic_store(&srv->shutting_down, 1);
    cascade_rpc_server_set_serving(srv, false);

    int tag = 0;
    grpc_server_shutdown_and_notify(srv->server, srv->shutdown_cq, &tag);
    gpr_timespec grace =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(grace_ms > 0 ? grace_ms : 0, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(srv->shutdown_cq, grace, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        CASCADE_WARN(NULL, "rpc: grace period of %d ms over, cancelling in-flight calls", grace_ms);
        grpc_server_cancel_all_calls(srv->server);
        grpc_completion_queue_next(srv->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    pthread_rwlock_wrlock(&srv->cq_lock);
    atomic_store(&srv->cq_closed, 1);
    for (int i = 0; i < srv->threads; i++)
        grpc_completion_queue_shutdown(srv->workers[i].cq);
    pthread_rwlock_unlock(&srv->cq_lock);
    for (int i = 0; i < srv->threads; i++) {
        if (srv->workers[i].thread_started)
            pthread_join(srv->workers[i].thread, NULL);
    }
}

void cascade_rpc_server_destroy(cascade_rpc_server *srv)
{
    if (!srv)
        return;
    if (srv->started)
        cascade_rpc_server_shutdown(srv, 0);
    if (srv->server)
        grpc_server_destroy(srv->server);
    if (srv->shutdown_cq) {
        grpc_completion_queue_shutdown(srv->shutdown_cq);
        while (
            grpc_completion_queue_next(srv->shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(srv->shutdown_cq);
    }
    /* Watchers still linked never got their close event; free them now. */
    while (srv->watchers) {
        struct call_slot *s = srv->watchers;
        srv->watchers = s->watch_next;
        slot_free(s);
    }
    if (srv->workers) {
        for (int i = 0; i < srv->threads; i++) {
            if (srv->workers[i].cq) {
                if (!srv->started)
                    grpc_completion_queue_shutdown(srv->workers[i].cq);
                grpc_completion_queue_destroy(srv->workers[i].cq);
            }
            cascade_arena_destroy(srv->workers[i].arena);
        }
    }
    pthread_mutex_destroy(&srv->watch_mu);
    pthread_rwlock_destroy(&srv->cq_lock);
    free_tls(srv);
    cascade_reflection_destroy(srv->reflection);
    free(srv->workers);
    free(srv->methods);
    free(srv);
}
