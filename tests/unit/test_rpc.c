/* Tests of the RPC runtime (common/rpc_*.c) with a real in-process gRPC server
 * on a loopback port and the runtime's own client: unary calls, handler errors,
 * deadlines, fan-out, malformed and oversized input, unknown methods, health,
 * request-id propagation and graceful shutdown. */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "clock.h"
#include "error.h"
#include "metrics.h"
#include "rpc.h"
#include "support.h"

#define METHOD "/cascade.v1.Recall/Recall"

/* Handlers inside a "meet" call right now (see echo_handler). */
static atomic_int meet_inside;

/* Test handler: one candidate per requested channel with item_id = quota + i.
 * Channel "fail" -> INVALID_ARGUMENT; "slow" -> waits for the deadline to pass;
 * "meet" -> waits until a second "meet" call is inside a handler at the same
 * time (DEADLINE_EXCEEDED if none comes); "rid" -> echoes the request id as
 * the channel name of the result; "echo:..." -> echoes that channel name
 * instead (a response as large as the request). */
static int echo_handler(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                        ProtobufCMessage **response)
{
    const Cascade__V1__RecallRequest *req = (const void *)request;
    cascade_arena *a = cascade_rpc_ctx_arena(ctx);
    atomic_int *calls = service; /* handlers run on several server threads at once */
    atomic_fetch_add(calls, 1);
    for (size_t i = 0; i < req->n_channels; i++) {
        if (strcmp(req->channels[i], "fail") == 0)
            return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "channel \"fail\" refused");
        if (strcmp(req->channels[i], "meet") == 0) {
            atomic_fetch_add(&meet_inside, 1);
            while (atomic_load(&meet_inside) < 2 && !cascade_rpc_ctx_expired(ctx)) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL); /* polls the counter */
            }
            bool met = atomic_load(&meet_inside) >= 2;
            if (!met) {
                atomic_fetch_sub(&meet_inside, 1);
                return cascade_rpc_ctx_fail(ctx, CASCADE_ETIMEDOUT, "nobody to meet");
            }
        }
        if (strcmp(req->channels[i], "slow") == 0) {
            while (!cascade_rpc_ctx_expired(ctx)) {
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL); /* simulates a slow stage, not synchronisation */
            }
            return cascade_rpc_ctx_fail(ctx, CASCADE_ETIMEDOUT, "too slow");
        }
    }
    Cascade__V1__RecallResponse *resp = cascade_arena_alloc(a, sizeof(*resp));
    cascade__v1__recall_response__init(resp);
    resp->n_candidates = req->n_channels;
    resp->candidates = cascade_arena_calloc(a, req->n_channels + 1, sizeof(*resp->candidates));
    for (size_t i = 0; i < req->n_channels; i++) {
        Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof(*c));
        cascade__v1__candidate__init(c);
        c->item_id = req->quota + i;
        resp->candidates[i] = c;
    }
    Cascade__V1__ChannelResult *cr = cascade_arena_alloc(a, sizeof(*cr));
    cascade__v1__channel_result__init(cr);
    cr->channel = cascade_arena_strdup(a, cascade_rpc_ctx_request_id(ctx));
    if (req->n_channels > 0 && strncmp(req->channels[0], "echo:", 5) == 0)
        cr->channel = req->channels[0];
    resp->n_channels = 1;
    resp->channels = cascade_arena_alloc(a, sizeof(*resp->channels));
    resp->channels[0] = cr;
    *response = &resp->base;
    return 0;
}

struct fixture {
    cascade_rpc_server *server;
    cascade_rpc_channel *channel;
    cascade_arena *arena;
    atomic_int handler_calls;
};

static int setup(void **state)
{
    static struct fixture f;
    char err[256], target[64];
    memset(&f, 0, sizeof(f));
    struct cascade_rpc_method methods[] = {{METHOD, &cascade__v1__recall_request__descriptor,
                                            &cascade__v1__recall_response__descriptor,
                                            echo_handler}};
    struct cascade_rpc_server_opts opts = {.listen_addr = "127.0.0.1:0",
                                           .threads = 2,
                                           .max_message_bytes = 4096,
                                           .service_name = "cascade.v1.Recall"};
    f.server = cascade_rpc_server_create(&opts, methods, 1, &f.handler_calls, err, sizeof(err));
    assert_non_null(f.server);
    assert_int_equal(cascade_rpc_server_start(f.server, err, sizeof(err)), 0);
    snprintf(target, sizeof(target), "127.0.0.1:%d", cascade_rpc_server_port(f.server));
    f.channel = cascade_rpc_channel_create(target, 0);
    assert_non_null(f.channel);
    f.arena = cascade_arena_create(0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_rpc_channel_destroy(f->channel);
    cascade_rpc_server_destroy(f->server);
    cascade_arena_destroy(f->arena);
    return 0;
}

static void make_call(struct cascade_rpc_call *call, struct fixture *f,
                      Cascade__V1__RecallRequest *req, int timeout_ms)
{
    memset(call, 0, sizeof(*call));
    call->channel = f->channel;
    call->method = METHOD;
    call->request = req ? &req->base : NULL;
    call->response_type = &cascade__v1__recall_response__descriptor;
    call->deadline_ms = cascade_now_ms() + timeout_ms;
}

static void test_unary_roundtrip(void **state)
{
    struct fixture *f = *state;
    char *channels[] = {"a", "b", "c"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 3;
    req.quota = 40;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 5000);
    call.request_id = "req-123";
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_OK);
    Cascade__V1__RecallResponse *resp = (void *)call.response;
    assert_non_null(resp);
    assert_int_equal(resp->n_candidates, 3);
    assert_int_equal(resp->candidates[0]->item_id, 40);
    assert_int_equal(resp->candidates[2]->item_id, 42);
    /* x-request-id metadata reaches the handler. */
    assert_string_equal(resp->channels[0]->channel, "req-123");
}

/* Two calls on one connection are served at the same time by the two
 * workers: none may queue behind a busy worker (which happened with several
 * calls pre-posted per worker: gRPC matched every call of a connection to
 * the first worker's queue). */
static void test_calls_on_one_connection_run_in_parallel(void **state)
{
    struct fixture *f = *state;
    char *channels[] = {"meet"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    req.quota = 5;
    for (int round = 0; round < 3; round++) {
        struct cascade_rpc_call calls[2];
        make_call(&calls[0], f, &req, 3000);
        make_call(&calls[1], f, &req, 3000);
        atomic_store(&meet_inside, 0);
        assert_int_equal(cascade_rpc_fanout(calls, 2, f->arena), 2);
        assert_int_equal(calls[0].status, GRPC_STATUS_OK);
        assert_int_equal(calls[1].status, GRPC_STATUS_OK);
    }
}

static void test_handler_error_status(void **state)
{
    struct fixture *f = *state;
    char *channels[] = {"fail"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 5000);
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), CASCADE_EINVAL);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(call.status_message, "channel \"fail\" refused");
    assert_null(call.response);
}

static void test_deadline_exceeded(void **state)
{
    struct fixture *f = *state;
    char *channels[] = {"slow"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 100);
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), CASCADE_ETIMEDOUT);
    assert_int_equal(call.status, GRPC_STATUS_DEADLINE_EXCEEDED);
}

static void test_fanout_reports_each_call(void **state)
{
    struct fixture *f = *state;
    char *ok_channels[] = {"x"};
    char *slow_channels[] = {"slow"};
    char *fail_channels[] = {"fail"};
    Cascade__V1__RecallRequest reqs[3] = {CASCADE__V1__RECALL_REQUEST__INIT,
                                          CASCADE__V1__RECALL_REQUEST__INIT,
                                          CASCADE__V1__RECALL_REQUEST__INIT};
    reqs[0].channels = ok_channels;
    reqs[0].n_channels = 1;
    reqs[0].quota = 7;
    reqs[1].channels = slow_channels;
    reqs[1].n_channels = 1;
    reqs[2].channels = fail_channels;
    reqs[2].n_channels = 1;
    struct cascade_rpc_call calls[3];
    make_call(&calls[0], f, &reqs[0], 5000);
    make_call(&calls[1], f, &reqs[1], 150);
    make_call(&calls[2], f, &reqs[2], 5000);
    assert_int_equal(cascade_rpc_fanout(calls, 3, f->arena), 1);
    assert_int_equal(calls[0].status, GRPC_STATUS_OK);
    assert_int_equal(((Cascade__V1__RecallResponse *)calls[0].response)->candidates[0]->item_id, 7);
    assert_int_equal(calls[1].status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(calls[2].status, GRPC_STATUS_INVALID_ARGUMENT);
}

static void test_fanout_dead_endpoint_is_unavailable(void **state)
{
    struct fixture *f = *state;
    /* Port 1 on loopback: nothing listens there. */
    cascade_rpc_channel *dead = cascade_rpc_channel_create("127.0.0.1:1", 0);
    char *channels[] = {"x"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call calls[2];
    make_call(&calls[0], f, &req, 2000);
    make_call(&calls[1], f, &req, 2000);
    calls[1].channel = dead;
    assert_int_equal(cascade_rpc_fanout(calls, 2, f->arena), 1);
    assert_int_equal(calls[0].status, GRPC_STATUS_OK);
    assert_true(calls[1].status == GRPC_STATUS_UNAVAILABLE ||
                calls[1].status == GRPC_STATUS_DEADLINE_EXCEEDED);
    cascade_rpc_channel_destroy(dead);
}

static void assert_still_serving(struct fixture *f)
{
    char *channels[] = {"a"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 5000);
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
}

static void test_malformed_bytes_rejected(void **state)
{
    struct fixture *f = *state;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80, 0x80};
    struct cascade_rpc_call call;
    make_call(&call, f, NULL, 5000);
    call.request = NULL;
    int calls_before = f->handler_calls;
    assert_int_equal(cascade_rpc_call_raw(&call, garbage, sizeof(garbage), f->arena),
                     CASCADE_EINVAL);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(call.status_message, "malformed request"));
    assert_int_equal(f->handler_calls, calls_before); /* the handler never saw it */

    /* A truncated valid message: field 2 (channels) claims 10 bytes, has 2. */
    const uint8_t truncated[] = {0x12, 0x0a, 'h', 'o'};
    make_call(&call, f, NULL, 5000);
    call.request = NULL;
    assert_int_equal(cascade_rpc_call_raw(&call, truncated, sizeof(truncated), f->arena),
                     CASCADE_EINVAL);
    assert_still_serving(f);
}

static void test_oversized_request(void **state)
{
    struct fixture *f = *state;
    static char big[6000];
    memset(big, 'x', sizeof(big) - 1);
    char *channels[] = {big};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 5000);
    assert_int_not_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_still_serving(f);
}

static void test_unknown_method(void **state)
{
    struct fixture *f = *state;
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    struct cascade_rpc_call call;
    make_call(&call, f, &req, 5000);
    call.method = "/cascade.v1.Nope/Nothing";
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), CASCADE_EUNIMPLEMENTED);
    assert_int_equal(call.status, GRPC_STATUS_UNIMPLEMENTED);
    assert_non_null(strstr(call.status_message, "/cascade.v1.Nope/Nothing"));
}

static void test_health(void **state)
{
    struct fixture *f = *state;
    char err[256];
    int status = -1;
    assert_int_equal(cascade_rpc_health_check(f->channel, "", cascade_now_ms() + 2000, &status, err,
                                              sizeof(err)),
                     0);
    assert_int_equal(status, 1); /* SERVING */
    assert_int_equal(cascade_rpc_health_check(f->channel, "cascade.v1.Recall",
                                              cascade_now_ms() + 2000, &status, err, sizeof(err)),
                     0);
    assert_int_equal(status, 1);
    cascade_rpc_server_set_serving(f->server, false);
    assert_int_equal(cascade_rpc_health_check(f->channel, "", cascade_now_ms() + 2000, &status, err,
                                              sizeof(err)),
                     0);
    assert_int_equal(status, 2); /* NOT_SERVING */
    cascade_rpc_server_set_serving(f->server, true);
    assert_int_equal(cascade_rpc_health_check(f->channel, "no.such.Service",
                                              cascade_now_ms() + 2000, &status, err, sizeof(err)),
                     CASCADE_ENOTFOUND);
    assert_non_null(strstr(err, "NOT_FOUND"));
}

static void test_bind_conflict_is_reported(void **state)
{
    struct fixture *f = *state;
    char err[256], addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", cascade_rpc_server_port(f->server));
    struct cascade_rpc_method methods[] = {{METHOD, &cascade__v1__recall_request__descriptor,
                                            &cascade__v1__recall_response__descriptor,
                                            echo_handler}};
    struct cascade_rpc_server_opts opts = {.listen_addr = addr, .threads = 1};
    cascade_rpc_server *second =
        cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err));
    assert_non_null(second);
    assert_int_not_equal(cascade_rpc_server_start(second, err, sizeof(err)), 0);
    assert_non_null(strstr(err, addr));
    cascade_rpc_server_destroy(second);
}

/* listen_unix: the same methods also answer on a Unix socket, reached as
 * "unix:PATH"; a relative path is refused at create, a directory that does
 * not exist at start, each with a message naming the path. */
static void test_unix_socket_listener(void **state)
{
    (void)state;
    char dir[256], path[300], target[310], missing[300], err[512];
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/recall.sock", dir);
    struct cascade_rpc_method methods[] = {{METHOD, &cascade__v1__recall_request__descriptor,
                                            &cascade__v1__recall_response__descriptor,
                                            echo_handler}};
    atomic_int calls = 0;
    struct cascade_rpc_server_opts opts = {
        .listen_addr = "127.0.0.1:0", .listen_unix = path, .threads = 1};
    cascade_rpc_server *srv =
        cascade_rpc_server_create(&opts, methods, 1, &calls, err, sizeof(err));
    assert_non_null(srv);
    assert_int_equal(cascade_rpc_server_start(srv, err, sizeof(err)), 0);
    snprintf(target, sizeof(target), "unix:%s", path);
    cascade_rpc_channel *ch = cascade_rpc_channel_create(target, 0);
    cascade_arena *arena = cascade_arena_create(0);
    char *channels[] = {"a", "b"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 2;
    req.quota = 7;
    struct cascade_rpc_call call;
    memset(&call, 0, sizeof(call));
    call.channel = ch;
    call.method = METHOD;
    call.request = &req.base;
    call.response_type = &cascade__v1__recall_response__descriptor;
    call.deadline_ms = cascade_now_ms() + 5000;
    assert_int_equal(cascade_rpc_call_unary(&call, arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_OK);
    Cascade__V1__RecallResponse *resp = (void *)call.response;
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[1]->item_id, 8);
    assert_int_equal(atomic_load(&calls), 1);
    cascade_rpc_channel_destroy(ch);
    cascade_rpc_server_destroy(srv);
    cascade_arena_destroy(arena);

    opts.listen_unix = "relative.sock";
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "\"relative.sock\" must be an absolute path"));
    snprintf(missing, sizeof(missing), "%s/no-such-dir/x.sock", dir);
    opts.listen_unix = missing;
    srv = cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err));
    assert_non_null(srv);
    assert_int_not_equal(cascade_rpc_server_start(srv, err, sizeof(err)), 0);
    assert_non_null(strstr(err, missing));
    cascade_rpc_server_destroy(srv);
    test_rmdir(dir);
}

static void test_shutdown_then_unavailable(void **state)
{
    (void)state;
    char err[256], target[64];
    atomic_int calls = 0;
    struct cascade_rpc_method methods[] = {{METHOD, &cascade__v1__recall_request__descriptor,
                                            &cascade__v1__recall_response__descriptor,
                                            echo_handler}};
    struct cascade_rpc_server_opts opts = {.listen_addr = "127.0.0.1:0", .threads = 1};
    cascade_rpc_server *srv =
        cascade_rpc_server_create(&opts, methods, 1, &calls, err, sizeof(err));
    assert_int_equal(cascade_rpc_server_start(srv, err, sizeof(err)), 0);
    snprintf(target, sizeof(target), "127.0.0.1:%d", cascade_rpc_server_port(srv));
    cascade_rpc_channel *ch = cascade_rpc_channel_create(target, 0);
    int status = 0;
    assert_int_equal(
        cascade_rpc_health_check(ch, "", cascade_now_ms() + 2000, &status, err, sizeof(err)), 0);
    cascade_rpc_server_shutdown(srv, 1000);
    assert_int_not_equal(
        cascade_rpc_health_check(ch, "", cascade_now_ms() + 500, &status, err, sizeof(err)), 0);
    cascade_rpc_channel_destroy(ch);
    cascade_rpc_server_destroy(srv);
}

/* A server on the default limits (gRPC's usual 4 MiB for received messages)
 * recording into its own registry, a channel to it and an arena. */
struct metered {
    cascade_metrics *metrics;
    cascade_rpc_server *srv;
    cascade_rpc_channel *ch;
    cascade_arena *arena;
    char target[64];
    atomic_int calls; /* echo_handler counts on the server threads */
};

static void metered_start(struct metered *m)
{
    char err[256];
    struct cascade_rpc_method methods[] = {{METHOD, &cascade__v1__recall_request__descriptor,
                                            &cascade__v1__recall_response__descriptor,
                                            echo_handler}};
    memset(m, 0, sizeof(*m));
    m->metrics = cascade_metrics_create();
    struct cascade_rpc_server_opts opts = {.listen_addr = "127.0.0.1:0",
                                           .threads = 2,
                                           .service_name = "cascade.v1.Recall",
                                           .metrics = m->metrics};
    m->srv = cascade_rpc_server_create(&opts, methods, 1, &m->calls, err, sizeof(err));
    assert_non_null(m->srv);
    assert_int_equal(cascade_rpc_server_start(m->srv, err, sizeof(err)), 0);
    snprintf(m->target, sizeof(m->target), "127.0.0.1:%d", cascade_rpc_server_port(m->srv));
    m->ch = cascade_rpc_channel_create(m->target, 0);
    assert_non_null(m->ch);
    m->arena = cascade_arena_create(0);
}

static void metered_stop(struct metered *m)
{
    cascade_rpc_channel_destroy(m->ch);
    cascade_rpc_server_destroy(m->srv);
    cascade_arena_destroy(m->arena);
    cascade_metrics_destroy(m->metrics);
}

/* A server given a registry counts each call by method and status code,
 * times it, and is back to zero calls in flight once the replies are out. */
static void test_server_metrics(void **state)
{
    (void)state;
    struct metered m;
    metered_start(&m);
    cascade_metrics *metrics = m.metrics;
    cascade_arena *arena = m.arena;

    /* Before any call: the OK series exists at 0 for every unary method. */
    char *text = cascade_metrics_render(metrics);
    assert_non_null(strstr(text, "cascade_rpc_requests_total{method=\"cascade.v1.Recall/Recall\","
                                 "code=\"OK\"} 0\n"));
    assert_non_null(strstr(text, "cascade_rpc_requests_total{method=\"grpc.health.v1.Health/"
                                 "Check\",code=\"OK\"} 0\n"));
    assert_null(strstr(text, "Health/Watch"));
    /* The worker count it was created with (metered_start: 2). */
    assert_non_null(strstr(text, "\ncascade_rpc_worker_threads 2\n"));
    free(text);

    struct fixture f = {.channel = m.ch, .arena = arena};
    char *ok_channels[] = {"a", "b"}, *bad_channels[] = {"fail"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    struct cascade_rpc_call call;
    req.channels = ok_channels;
    req.n_channels = 2;
    for (int i = 0; i < 3; i++) {
        make_call(&call, &f, &req, 5000);
        assert_int_equal(cascade_rpc_call_unary(&call, arena), 0);
    }
    req.channels = bad_channels;
    req.n_channels = 1;
    make_call(&call, &f, &req, 5000);
    assert_int_not_equal(cascade_rpc_call_unary(&call, arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    /* Malformed bytes never reach the handler but are counted too. */
    make_call(&call, &f, NULL, 5000);
    cascade_rpc_call_raw(&call, "\xff\xff\xff", 3, arena);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(m.calls, 4);

    /* The same families, looked up by a stage, see the server's counts. The
     * server records before it replies, so no waiting is needed. */
    cascade_metric_family *requests =
        cascade_metrics_counter(metrics, "cascade_rpc_requests_total", "ignored", "method,code");
    assert_non_null(requests);
    const char *ok[] = {"cascade.v1.Recall/Recall", "OK"};
    const char *invalid[] = {"cascade.v1.Recall/Recall", "INVALID_ARGUMENT"};
    assert_true(cascade_metric_value(cascade_metric_get(requests, ok)) == 3.0);
    assert_true(cascade_metric_value(cascade_metric_get(requests, invalid)) == 2.0);
    cascade_metric_family *in_flight =
        cascade_metrics_gauge(metrics, "cascade_rpc_in_flight", "ignored", NULL);
    assert_true(cascade_metric_value(cascade_metric_get(in_flight, NULL)) == 0.0);

    text = cascade_metrics_render(metrics);
    assert_non_null(strstr(text, "# TYPE cascade_rpc_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "cascade_rpc_latency_seconds_count{method=\"cascade.v1.Recall/"
                                 "Recall\"} 5\n"));
    assert_non_null(strstr(text, "cascade_rpc_latency_seconds_bucket{method=\"cascade.v1.Recall/"
                                 "Recall\",le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(text, "cascade_rpc_in_flight 0\n"));
    free(text);
    metered_stop(&m);
}

/* A channel name `bytes` long starting "echo:" (the request, and its echoed
 * response, are about that size). */
static char *big_channel(size_t bytes)
{
    char *s = malloc(bytes + 1);
    assert_non_null(s);
    memset(s, 'x', bytes);
    memcpy(s, "echo:", 5);
    s[bytes] = '\0';
    return s;
}

/* The default limit is 4 MiB: 3 MiB is served, 5 MiB gets RESOURCE_EXHAUSTED
 * from gRPC before the handler. A channel on the default limit accepts the
 * 3 MiB answer; one limited to 1 MiB refuses it. The refused 5 MiB request
 * goes last, so the calls that must succeed never share a connection with a
 * stream the server reset while the client was still sending it. */
static void test_default_message_limit(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    /* Under ThreadSanitizer a multi-MiB call can stall inside gRPC's
     * uninstrumented transport until its deadline, even at 100 s on an
     * otherwise idle server (scripts/tsan.sh notes, HACKING.md); the limits
     * are checked in every other build. */
    skip();
#endif
    struct metered m;
    metered_start(&m);
    cascade_arena *arena = m.arena;
    struct fixture f = {.channel = m.ch, .arena = arena};
    char *five = big_channel((size_t)5 << 20), *three = big_channel((size_t)3 << 20);
    char *channels[1];
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call;

    channels[0] = three;
    make_call(&call, &f, &req, 10000);
    assert_int_equal(cascade_rpc_call_unary(&call, arena), 0);
    assert_int_equal(m.calls, 1);
    Cascade__V1__RecallResponse *resp = (void *)call.response;
    assert_int_equal(strlen(resp->channels[0]->channel), (size_t)3 << 20);

    cascade_rpc_channel *small = cascade_rpc_channel_create(m.target, (size_t)1 << 20);
    assert_non_null(small);
    make_call(&call, &f, &req, 10000);
    call.channel = small;
    assert_int_equal(cascade_rpc_call_unary(&call, arena), CASCADE_ETOOBIG);
    assert_int_equal(call.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    cascade_rpc_channel_destroy(small);

    channels[0] = five;
    make_call(&call, &f, &req, 10000);
    assert_int_equal(cascade_rpc_call_unary(&call, arena), CASCADE_ETOOBIG);
    assert_int_equal(call.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(call.status_message, "4194304"));
    assert_int_equal(m.calls, 2); /* the refused one never reached the handler */

    free(five);
    free(three);
    metered_stop(&m);
}

/* Health Watch refuses bytes that are not a HealthCheckRequest, as Check
 * does, instead of opening a stream for them. */
static void test_watch_rejects_malformed_request(void **state)
{
    struct fixture *f = *state;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80, 0x80};
    const char *paths[] = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"};
    for (size_t i = 0; i < 2; i++) {
        struct cascade_rpc_call call;
        make_call(&call, f, NULL, 5000);
        call.method = paths[i];
        assert_int_equal(cascade_rpc_call_raw(&call, garbage, sizeof(garbage), f->arena),
                         CASCADE_EINVAL);
        assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(call.status_message, "HealthCheckRequest"));
    }
    /* A valid Watch request still opens a stream: the unary client gets the
     * first status as a message and then waits for an end that never comes. */
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    hreq.service = "";
    uint8_t valid[16];
    size_t len = grpc__health__v1__health_check_request__pack(&hreq, valid);
    struct cascade_rpc_call call;
    make_call(&call, f, NULL, 300);
    call.method = paths[1];
    assert_int_equal(cascade_rpc_call_raw(&call, valid, len, f->arena), CASCADE_ETIMEDOUT);
    assert_still_serving(f);
}

/* Start a call on a raw gRPC channel with the given ops; wait for its batch. */
static grpc_call *raw_call_start(grpc_channel *gch, grpc_completion_queue *cq, const char *method,
                                 grpc_op *ops, size_t n, int64_t timeout_ms)
{
    grpc_slice m = grpc_slice_from_static_string(method);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_call *c =
        grpc_channel_create_call(gch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, deadline, NULL);
    assert_non_null(c);
    assert_int_equal(grpc_call_start_batch(c, ops, n, c, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
    assert_ptr_equal(ev.tag, c);
    return c;
}

/* One complete health Check on a raw channel; returns its status. */
static grpc_status_code raw_health_check(grpc_channel *gch, grpc_completion_queue *cq)
{
    grpc_metadata_array initial, trailing;
    grpc_byte_buffer *recv = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_slice body = grpc_empty_slice(); /* an empty HealthCheckRequest: service "" */
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    grpc_call *c = raw_call_start(gch, cq, "/grpc.health.v1.Health/Check", ops, 6, 5000);
    grpc_call_unref(c);
    grpc_byte_buffer_destroy(send);
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    return status;
}

/* A call the client cancels before sending its message is counted as
 * CANCELLED, not as an INVALID_ARGUMENT request. */
static void test_cancelled_before_message_counts_cancelled(void **state)
{
    (void)state;
    struct metered m;
    metered_start(&m);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *gch = grpc_channel_create(m.target, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);

    /* Headers only; the message never comes. */
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    grpc_call *c = raw_call_start(gch, cq, METHOD, &op, 1, 10000);
    /* A later call on the same connection has been answered, so the server
     * has read the first call's headers before the cancellation arrives. */
    assert_int_equal(raw_health_check(gch, cq), GRPC_STATUS_OK);
    grpc_call_cancel(c, NULL);
    grpc_call_unref(c);

    /* The server counts the cancelled call once it sees the cancellation:
     * poll the counter, a bounded number of times. */
    cascade_metric_family *requests =
        cascade_metrics_counter(m.metrics, "cascade_rpc_requests_total", "ignored", "method,code");
    const char *cancelled[] = {"cascade.v1.Recall/Recall", "CANCELLED"};
    const char *invalid[] = {"cascade.v1.Recall/Recall", "INVALID_ARGUMENT"};
    int tries = 0;
    while (cascade_metric_value(cascade_metric_get(requests, cancelled)) < 1.0 && tries++ < 500) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL); /* polls the counter */
    }
    assert_true(cascade_metric_value(cascade_metric_get(requests, cancelled)) == 1.0);
    assert_true(cascade_metric_value(cascade_metric_get(requests, invalid)) == 0.0);
    assert_int_equal(m.calls, 0);

    grpc_channel_destroy(gch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    metered_stop(&m);
}

int main(void)
{
    cascade_rpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_roundtrip),
        cmocka_unit_test(test_handler_error_status),
        cmocka_unit_test(test_deadline_exceeded),
        cmocka_unit_test(test_fanout_reports_each_call),
        cmocka_unit_test(test_fanout_dead_endpoint_is_unavailable),
        cmocka_unit_test(test_malformed_bytes_rejected),
        cmocka_unit_test(test_oversized_request),
        cmocka_unit_test(test_calls_on_one_connection_run_in_parallel),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_bind_conflict_is_reported),
        cmocka_unit_test(test_unix_socket_listener),
        cmocka_unit_test(test_shutdown_then_unavailable),
        cmocka_unit_test(test_server_metrics),
        cmocka_unit_test(test_default_message_limit),
        cmocka_unit_test(test_watch_rejects_malformed_request),
        cmocka_unit_test(test_cancelled_before_message_counts_cancelled),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    cascade_rpc_shutdown();
    return failed;
}
