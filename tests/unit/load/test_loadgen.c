/* Unit tests of cascade-load's library: ghz's flags, the templates, the JSON
 * to protobuf mapping, and whole runs against a stub Recommender that takes a
 * known 20 ms per call (counts exact, latencies at least the delay, the open
 * loop's queueing when the stub is saturated, ghz's JSON field names). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "support.h"

#include "cascade/v1/common.pb-c.h"
#include "cascade/v1/recommender.pb-c.h"
#include "clock.h"
#include "error.h"
#include "load.h"
#include "rpc.h"

#define DELAY_MS 20
#define MS 1000000LL

/* ------------------------------------------------------------ stub server */

struct stub {
    atomic_int calls;
    atomic_uint_fast64_t seen; /* bit k: request number k arrived (user "u<k>") */
    pthread_mutex_t lock;
    char last_peer[128]; /* the caller's address of the last call */
};

/* Sleep DELAY_MS, then answer: DEADLINE_EXCEEDED when the caller's deadline
 * passed; degraded for even request numbers; user "bad" gets
 * INVALID_ARGUMENT; count must be 5 (the data says so). */
static int stub_recommend(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage **response)
{
    struct stub *s = service;
    const Cascade__V1__RecommendRequest *req = (const Cascade__V1__RecommendRequest *)request;
    struct timespec d = {.tv_sec = 0, .tv_nsec = DELAY_MS * MS};
    while (nanosleep(&d, &d) != 0) {
    }
    atomic_fetch_add(&s->calls, 1);
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_peer, sizeof s->last_peer, "%s", cascade_rpc_ctx_peer(ctx));
    pthread_mutex_unlock(&s->lock);
    /* Past the caller's deadline the stage answers DEADLINE_EXCEEDED itself,
     * as every stage does: the client's status then does not depend on
     * whether its own deadline timer fired before the answer came in (on a
     * loaded machine it sometimes does not). */
    if (cascade_rpc_ctx_expired(ctx))
        return cascade_rpc_ctx_fail(ctx, CASCADE_ETIMEDOUT, "deadline passed");
    if (!req->user || strcmp(req->user->user_id, "bad") == 0)
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "bad user");
    if (req->count != 5)
        return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "count %u", req->count);
    unsigned long k = strtoul(req->user->user_id + 1, NULL, 10);
    if (k < 64)
        atomic_fetch_or(&s->seen, (uint64_t)1 << k);
    Cascade__V1__RecommendResponse *resp =
        cascade_arena_calloc(cascade_rpc_ctx_arena(ctx), 1, sizeof *resp);
    cascade__v1__recommend_response__init(resp);
    resp->degraded = k % 2 == 0;
    *response = &resp->base;
    return 0;
}

struct fixture {
    struct stub stub;
    cascade_rpc_server *server;
    char target[64];
};

static int setup(void **state)
{
    static struct fixture f;
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.Recommender/Recommend", &cascade__v1__recommend_request__descriptor,
         &cascade__v1__recommend_response__descriptor, stub_recommend},
    };
    char err[256];
    pthread_mutex_init(&f.stub.lock, NULL);
    cascade_rpc_init();
    struct cascade_rpc_server_opts opts = {
        .listen_addr = "127.0.0.1:0", .threads = 4, .service_name = "cascade.v1.Recommender"};
    f.server = cascade_rpc_server_create(&opts, methods, 1, &f.stub, err, sizeof err);
    if (!f.server || cascade_rpc_server_start(f.server, err, sizeof err) != 0)
        return -1;
    snprintf(f.target, sizeof f.target, "127.0.0.1:%d", cascade_rpc_server_port(f.server));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_rpc_server_destroy(f->server);
    cascade_rpc_shutdown();
    return 0;
}

static int parse_adapter(int argc, char **argv, void *opts, FILE *out, FILE *err)
{
    return cascade_load_parse(argc, argv, opts, out, err);
}

/* Parse a NULL-terminated argument list; stderr text goes to err_text. */
static int parse(struct cascade_load_opts *o, char *err_text, size_t len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = test_parse_argv(parse_adapter, o, "cascade-load", err_text, len, ap);
    va_end(ap);
    return rc;
}

static struct cascade_load_report *run(struct cascade_load_opts *o)
{
    struct cascade_load_report *r = NULL;
    char err[700] = "";
    int rc = cascade_load_run(o, &r, err, sizeof err);
    if (rc != 0)
        fail_msg("run: %s", err);
    return r;
}

/* ------------------------------------------------------------------ flags */

static void test_flags(void **state)
{
    (void)state;
    struct cascade_load_opts o;
    char err[700];
    const char *call = "--call=cascade.v1.Recommender.Recommend";
    assert_int_equal(parse(&o, err, sizeof err, call, "h:1", NULL), 0);
    /* ghz's defaults. */
    assert_int_equal(o.total, 200);
    assert_int_equal(o.concurrency, 50);
    assert_int_equal(o.connections, 1);
    assert_int_equal(o.timeout_ms, 20000);
    assert_string_equal(o.method.path, "/cascade.v1.Recommender/Recommend");
    assert_ptr_equal(o.method.input, &cascade__v1__recommend_request__descriptor);
    assert_int_equal(parse(&o, err, sizeof err, "--call", "cascade.v1.Recommender/Feedback", "-n",
                           "10", "-c", "2", "-z", "1m30s", "--rps", "400", "--connections", "2",
                           "-t", "250ms", "--insecure", "-O", "json", "-d", "{\"events\":[]}",
                           "--proto", CASCADE_PROTO_DIR "/cascade/v1/recommender.proto", "h:1",
                           NULL),
                     0);
    assert_string_equal(o.method.full_name, "cascade.v1.Recommender.Feedback");
    assert_int_equal(o.duration_ns, 90 * 1000 * MS);
    assert_true(o.rps == 400.0);
    assert_int_equal(o.timeout_ms, 250);
    assert_int_equal(o.format, CASCADE_LOAD_JSON);
    assert_true(o.insecure);

    static const struct {
        const char *flag, *value, *expect;
    } bad[] = {
        {"-n", "x", "-n x"},
        {"-c", "0", "-c 0"},
        {"-z", "10", "-z 10: expected a duration"},
        {"-t", "5 s", "--timeout 5 s"},
        {"--rps", "-3", "--rps -3"},
        {"-O", "xml", "-O xml"},
        {"--call", "cascade.v1.Nope.X", "unknown service cascade.v1.Nope"},
        {"--call", "cascade.v1.Rank.Nope", "service cascade.v1.Rank has no method Nope"},
        {"--proto", CASCADE_PROTO_DIR "/cascade/v1/rank.proto",
         "no service Recommender with rpc Recommend"},
        {"--proto", "/nonexistent.proto", "--proto /nonexistent.proto: cannot open it"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(&o, err, sizeof err, call, (char *)bad[i].flag, (char *)bad[i].value,
                               "-n", "100", "h:1", NULL),
                         CASCADE_LOAD_USAGE);
        if (!strstr(err, bad[i].expect))
            fail_msg("%s %s: got \"%s\"", bad[i].flag, bad[i].value, err);
        assert_non_null(strstr(err, "cascade-load: "));
    }
    assert_int_equal(parse(&o, err, sizeof err, call, NULL), CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "HOST:PORT is required"));
    assert_int_equal(parse(&o, err, sizeof err, call, "--bogus", "h:1", NULL), CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "unknown option --bogus"));
    assert_int_equal(parse(&o, err, sizeof err, call, "-n", "3", "-c", "5", "h:1", NULL),
                     CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "-n 3 is less than -c 5"));
    assert_int_equal(parse(&o, err, sizeof err, "h:1", NULL), CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "--call is required"));
    assert_int_equal(
        parse(&o, err, sizeof err, call, "--insecure", "--cacert", "ca.pem", "h:1", NULL),
        CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "--insecure cannot go with --cacert"));
    assert_int_equal(
        parse(&o, err, sizeof err, call, "-c", "2", "-n", "2", "--connections", "3", "h:1", NULL),
        CASCADE_LOAD_USAGE);
    assert_non_null(strstr(err, "--connections 3 is more than -c 2"));
}

/* -------------------------------------------------------------- templates */

static void test_template(void **state)
{
    (void)state;
    struct cascade_load_method m;
    char err[600];
    assert_int_equal(
        cascade_load_method_find("cascade.v1.Recommender.Recommend", &m, err, sizeof err), 0);
    struct cascade_load_template_ctx t = {.request_number = 42, .method = &m};
    cascade_rng_seed(&t.rng, 1);
    char *s = cascade_load_template_expand("u{{.RequestNumber}}/{{ .MethodName }}/{{.ServiceName}}",
                                           &t, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "u42/Recommend/cascade.v1.Recommender");
    free(s);
    /* randomInt MIN MAX: MIN <= v < MAX, and it does vary. */
    int lo = 1000, hi = -1;
    for (int i = 0; i < 2000; i++) {
        s = cascade_load_template_expand("{{randomInt 1 10}}", &t, err, sizeof err);
        assert_non_null(s);
        int v = atoi(s);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        free(s);
    }
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 9);
    /* A version-4 UUID, different each time. */
    char *a = cascade_load_template_expand("{{.UUID}}", &t, err, sizeof err);
    char *b = cascade_load_template_expand("{{newUUID}}", &t, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(strlen(a), 36);
    assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
    free(a);
    free(b);
    s = cascade_load_template_expand("{{randomString 12}}", &t, err, sizeof err);
    assert_int_equal(strlen(s), 12);
    free(s);
    assert_null(cascade_load_template_expand("{{.Nope}}", &t, err, sizeof err));
    assert_non_null(strstr(err, "{{.Nope}}: unknown action"));
    assert_null(cascade_load_template_expand("x {{.UUID", &t, err, sizeof err));
    assert_non_null(strstr(err, "never closed"));
    assert_null(cascade_load_template_expand("{{randomInt 5 5}}", &t, err, sizeof err));
    assert_non_null(strstr(err, "MIN < MAX"));
}

/* ------------------------------------------------------------ JSON mapping */

static ProtobufCMessage *from_json(const ProtobufCMessageDescriptor *d, const char *text,
                                   cascade_arena *arena, char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    ProtobufCMessage *m = NULL;
    int rc = cascade_load_json_to_message(d, j, arena, &m, err, errlen);
    json_decref(j);
    return rc == 0 ? m : NULL;
}

static void test_json_mapping(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    char err[600] = "";
    ProtobufCMessage *m =
        from_json(&cascade__v1__recommend_request__descriptor,
                  "{\"user\":{\"user_id\":\"u1\",\"city\":3,\"requestTimeS\":\"1700000000\"},"
                  "\"count\":5,\"debug\":true}",
                  arena, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    /* Through the wire and back: the message is well-formed. */
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(m, buf);
    Cascade__V1__RecommendRequest *r = cascade__v1__recommend_request__unpack(NULL, len, buf);
    assert_non_null(r);
    assert_string_equal(r->user->user_id, "u1");
    assert_int_equal(r->user->city, 3);
    assert_int_equal(r->user->request_time_s, 1700000000);
    assert_int_equal(r->count, 5);
    assert_true(r->debug);
    cascade__v1__recommend_request__free_unpacked(r, NULL);
    free(buf);

    /* Repeated messages and enums by name or number. */
    const Cascade__V1__FeedbackRequest *f = (const Cascade__V1__FeedbackRequest *)from_json(
        &cascade__v1__feedback_request__descriptor,
        "{\"events\":[{\"userId\":\"a\",\"itemId\":\"18446744073709551615\",\"type\":"
        "\"EVENT_TYPE_CLICK\",\"value\":1.5},{\"user_id\":\"b\",\"item_id\":\"7\",\"type\":3}]}",
        arena, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(f->n_events, 2);
    assert_true(f->events[0]->item_id == UINT64_MAX);
    assert_int_equal(f->events[0]->type, CASCADE__V1__EVENT_TYPE__EVENT_TYPE_CLICK);
    assert_true(f->events[0]->value == 1.5f);
    assert_int_equal(f->events[1]->item_id, 7);
    assert_int_equal(f->events[1]->type, CASCADE__V1__EVENT_TYPE__EVENT_TYPE_LIKE);

    /* A map<string, string> from a JSON object. */
    const Cascade__V1__LayerAssignment *l = (const Cascade__V1__LayerAssignment *)from_json(
        &cascade__v1__layer_assignment__descriptor,
        "{\"layer\":\"rank\",\"params\":{\"rerank.lambda\":\"0.7\"}}", arena, err, sizeof err);
    if (!l)
        fail_msg("%s", err);
    assert_int_equal(l->n_params, 1);
    assert_string_equal(l->params[0]->key, "rerank.lambda");
    assert_string_equal(l->params[0]->value, "0.7");

    static const struct {
        const char *json, *expect;
    } bad[] = {
        {"{\"nope\":1}", "cascade.v1.RecommendRequest has no field \"nope\""},
        {"{\"count\":\"x\"}", "cascade.v1.RecommendRequest.count: expected an unsigned 32-bit"},
        {"{\"count\":-1}", "cascade.v1.RecommendRequest.count"},
        {"{\"count\":4294967296}", "cascade.v1.RecommendRequest.count"},
        {"{\"debug\":1}", "cascade.v1.RecommendRequest.debug: expected true or false"},
        {"{\"user\":[]}", "cascade.v1.RecommendRequest.user: expected an object"},
        {"{\"user\":{\"city\":1.5}}", "cascade.v1.UserContext.city"},
        {"[]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(from_json(&cascade__v1__recommend_request__descriptor, bad[i].json, arena, err,
                              sizeof err));
        if (!strstr(err, bad[i].expect))
            fail_msg("%s: got \"%s\"", bad[i].json, err);
    }
    assert_null(from_json(&cascade__v1__feedback_request__descriptor,
                          "{\"events\":[{\"type\":\"EVENT_TYPE_NOPE\"}]}", arena, err, sizeof err));
    assert_non_null(strstr(err, "expected a value of enum cascade.v1.EventType"));
    cascade_arena_destroy(arena);
}

/* ------------------------------------------------------------------- runs */

static void opts_for(struct cascade_load_opts *o, struct fixture *f, char *err, size_t len,
                     const char *n, const char *c)
{
    assert_int_equal(parse(o, err, len, "--call", "cascade.v1.Recommender.Recommend", "--insecure",
                           "-n", n, "-c", c, "-d",
                           "{\"user\":{\"userId\":\"u{{.RequestNumber}}\"},\"count\":5}", f->target,
                           NULL),
                     0);
}

static void test_closed_loop_counts(void **state)
{
    struct fixture *f = *state;
    struct cascade_load_opts o;
    char err[700];
    opts_for(&o, f, err, sizeof err, "12", "3");
    atomic_store(&f->stub.calls, 0);
    atomic_store(&f->stub.seen, 0);
    struct cascade_load_report *r = run(&o);
    /* Exactly n calls, each request number once. */
    assert_int_equal(r->count, 12);
    assert_int_equal(atomic_load(&f->stub.calls), 12);
    assert_int_equal(atomic_load(&f->stub.seen), 0xfff);
    assert_int_equal(r->degraded, 6); /* 0, 2, ..., 10 */
    struct cascade_load_stats st;
    assert_int_equal(cascade_load_stats(r, &st), 0);
    int64_t sum = 0;
    for (size_t i = 0; i < r->count; i++) {
        assert_int_equal(r->results[i].status, GRPC_STATUS_OK);
        assert_true(r->results[i].latency_ns >= DELAY_MS * MS);
        sum += r->results[i].latency_ns;
    }
    assert_int_equal(st.n_lat, 12);
    assert_true(st.fastest_ns >= DELAY_MS * MS);
    assert_true(st.fastest_ns <= st.average_ns && st.average_ns <= st.slowest_ns);
    assert_true(llabs(st.average_ns - sum / 12) <= 1);
    /* 12 calls at >= 20 ms on 3 workers: the run takes at least 4 rounds. */
    assert_true(st.total_ns >= 4 * DELAY_MS * MS);
    assert_true(st.rps == 12.0 / ((double)st.total_ns / 1e9));
    uint64_t in_buckets = 0;
    for (size_t b = 0; b < st.n_buckets; b++)
        in_buckets += st.bucket_count[b];
    assert_int_equal(in_buckets, 12);
    /* Marks are seconds: ns / 1e9 does not always come back exact. */
    assert_true(fabs(st.mark_s[0] * 1e9 - (double)st.fastest_ns) < 1.0);
    assert_true(fabs(st.mark_s[10] * 1e9 - (double)st.slowest_ns) < 1.0);
    for (int p = 1; p < CASCADE_LOAD_PCTLS; p++)
        assert_true(st.pctl_ns[p] >= st.pctl_ns[p - 1]);
    assert_true(st.pctl_ns[0] >= st.fastest_ns && st.pctl_ns[6] == st.slowest_ns);
    cascade_load_report_destroy(r);
}

/* Open loop on a saturated server: one worker, a call due every 10 ms, each
 * taking >= 20 ms. Call k is due at 10k ms but cannot start before the k
 * calls ahead of it are done (>= 20k ms), so its latency, measured from when
 * it was due, is >= 10k + 20 ms. A closed-loop client would report ~20 ms. */
static void test_open_loop_queueing(void **state)
{
    struct fixture *f = *state;
    struct cascade_load_opts o;
    char err[700];
    opts_for(&o, f, err, sizeof err, "10", "1");
    o.rps = 100;
    struct cascade_load_report *r = run(&o);
    assert_int_equal(r->count, 10);
    for (size_t k = 0; k < r->count; k++) {
        /* Sorted by due time, which follows the schedule to the nanosecond. */
        assert_int_equal(r->results[k].timestamp_ns - r->results[0].timestamp_ns,
                         (int64_t)k * 10 * MS);
        if (r->results[k].latency_ns < (int64_t)(10 * k + DELAY_MS) * MS)
            fail_msg("call %zu: latency %lld ns, want >= %zu ms", k,
                     (long long)r->results[k].latency_ns, 10 * k + DELAY_MS);
    }
    struct cascade_load_stats st;
    assert_int_equal(cascade_load_stats(r, &st), 0);
    assert_true(st.slowest_ns >= 110 * MS);
    cascade_load_report_destroy(r);
}

/* -z: open loop at 100/s for 200 ms sends exactly the 20 calls due before
 * the end (k * 10 ms < 200 ms), however slow the server; closed loop sends
 * only calls that started before the end, at most one per 20 ms per worker. */
static void test_duration(void **state)
{
    struct fixture *f = *state;
    struct cascade_load_opts o;
    char err[700];
    opts_for(&o, f, err, sizeof err, "4", "4");
    o.duration_ns = 200 * MS;
    o.rps = 100;
    struct cascade_load_report *r = run(&o);
    assert_int_equal(r->count, 20);
    assert_string_equal(r->end_reason, "timeout");
    for (size_t k = 0; k < r->count; k++)
        assert_int_equal(r->results[k].timestamp_ns - r->results[0].timestamp_ns,
                         (int64_t)k * 10 * MS);
    cascade_load_report_destroy(r);
    o.rps = 0;
    r = run(&o);
    assert_true(r->count <= 4 * (200 / DELAY_MS + 1));
    for (size_t k = 0; k < r->count; k++)
        assert_true(r->results[k].timestamp_ns - r->date_s * 1000000000LL <
                    200 * MS + 1000000000LL);
    cascade_load_report_destroy(r);
}

static void test_errors_and_timeout(void **state)
{
    struct fixture *f = *state;
    struct cascade_load_opts o;
    char err[700];
    /* Every call past its 5 ms deadline (the stub takes 20 ms). */
    opts_for(&o, f, err, sizeof err, "4", "2");
    o.timeout_ms = 5;
    struct cascade_load_report *r = run(&o);
    assert_int_equal(r->count, 4);
    struct cascade_load_stats st;
    assert_int_equal(cascade_load_stats(r, &st), 0);
    assert_int_equal(st.n_lat, 0); /* ghz: latency stats cover OK calls only */
    for (size_t i = 0; i < r->count; i++) {
        assert_int_equal(r->results[i].status, GRPC_STATUS_DEADLINE_EXCEEDED);
        assert_non_null(strstr(r->results[i].error, "rpc error: code = DeadlineExceeded desc = "));
    }
    o.count_errors = true;
    assert_int_equal(cascade_load_stats(r, &st), 0);
    assert_int_equal(st.n_lat, 4);
    cascade_load_report_destroy(r);
    /* A server error is counted by status and message. */
    assert_int_equal(parse(&o, err, sizeof err, "--call", "cascade.v1.Recommender.Recommend", "-n",
                           "3", "-c", "1", "-d", "{\"user\":{\"userId\":\"bad\"}}", f->target,
                           NULL),
                     0);
    r = run(&o);
    assert_int_equal(r->count, 3);
    for (size_t i = 0; i < r->count; i++)
        assert_string_equal(r->results[i].error,
                            "rpc error: code = InvalidArgument desc = bad user");
    cascade_load_report_destroy(r);
    /* Data that does not fit the request type stops the run before any call. */
    int before = atomic_load(&f->stub.calls);
    assert_int_equal(parse(&o, err, sizeof err, "--call", "cascade.v1.Recommender.Recommend", "-n",
                           "3", "-c", "1", "-d", "{\"count\":\"many\"}", f->target, NULL),
                     0);
    assert_int_not_equal(cascade_load_run(&o, &r, err, sizeof err), 0);
    assert_null(r);
    assert_non_null(strstr(err, "-d: cascade.v1.RecommendRequest.count"));
    assert_int_equal(atomic_load(&f->stub.calls), before);
}

/* The caller address the stub saw for one call on ch (into peer). */
static void peer_of_call(struct fixture *f, cascade_rpc_channel *ch, char *peer, size_t len)
{
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    user.user_id = "u1";
    req.user = &user;
    req.count = 5;
    struct cascade_rpc_call call = {.channel = ch,
                                    .method = "/cascade.v1.Recommender/Recommend",
                                    .request = &req.base,
                                    .response_type = &cascade__v1__recommend_response__descriptor,
                                    .deadline_ms = cascade_now_ms() + 20000};
    cascade_arena *arena = cascade_arena_create(0);
    assert_int_equal(cascade_rpc_call_unary(&call, arena), 0);
    cascade_arena_destroy(arena);
    pthread_mutex_lock(&f->stub.lock);
    snprintf(peer, len, "%s", f->stub.last_peer);
    pthread_mutex_unlock(&f->stub.lock);
}

/* --connections N needs N TCP connections: channels made with own_connection
 * reach the server from different client ports; plain channels to the same
 * target share gRPC's one connection. */
static void test_own_connection(void **state)
{
    struct fixture *f = *state;
    char p[4][128];
    for (int own = 0; own < 2; own++) {
        struct cascade_rpc_channel_opts opts = {.own_connection = own};
        cascade_rpc_channel *a = cascade_rpc_channel_create_opts(f->target, &opts);
        cascade_rpc_channel *b = cascade_rpc_channel_create_opts(f->target, &opts);
        assert_non_null(a);
        assert_non_null(b);
        peer_of_call(f, a, p[2 * own], sizeof p[0]);
        peer_of_call(f, b, p[2 * own + 1], sizeof p[0]);
        cascade_rpc_channel_destroy(a);
        cascade_rpc_channel_destroy(b);
    }
    assert_non_null(strstr(p[0], "127.0.0.1:"));
    assert_string_equal(p[0], p[1]);     /* shared */
    assert_string_not_equal(p[2], p[3]); /* one connection each */
}

/* ghz's JSON report fields (ghz.sh/docs/output and its runner.Report type):
 * name, type; durations in ns, histogram marks in seconds. */
static void test_json_report(void **state)
{
    struct fixture *f = *state;
    struct cascade_load_opts o;
    char err[700];
    opts_for(&o, f, err, sizeof err, "6", "2");
    struct cascade_load_report *r = run(&o);
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    assert_int_equal(cascade_load_write_json(r, mem), 0);
    fclose(mem);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("not JSON: %s: %s", jerr.text, text);
    static const struct {
        const char *key;
        json_type type;
    } fields[] = {
        {"date", JSON_STRING},
        {"endReason", JSON_STRING},
        {"options", JSON_OBJECT},
        {"count", JSON_INTEGER},
        {"total", JSON_INTEGER},
        {"average", JSON_INTEGER},
        {"fastest", JSON_INTEGER},
        {"slowest", JSON_INTEGER},
        {"rps", JSON_REAL},
        {"errorDistribution", JSON_OBJECT},
        {"statusCodeDistribution", JSON_OBJECT},
        {"latencyDistribution", JSON_ARRAY},
        {"histogram", JSON_ARRAY},
        {"details", JSON_ARRAY},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *v = json_object_get(j, fields[i].key);
        if (!v || json_typeof(v) != fields[i].type)
            fail_msg("field %s missing or of the wrong type", fields[i].key);
    }
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 6);
    assert_int_equal(json_integer_value(json_object_get(j, "degraded")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "statusCodeDistribution"), "OK")), 6);
    /* The summary numbers agree with the details (recomputed here). */
    json_t *details = json_object_get(j, "details");
    assert_int_equal(json_array_size(details), 6);
    long long min = INT64_MAX, max = 0, sum = 0;
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        assert_true(json_is_string(json_object_get(d, "timestamp")));
        assert_string_equal(json_string_value(json_object_get(d, "status")), "OK");
        assert_string_equal(json_string_value(json_object_get(d, "error")), "");
        long long lat = json_integer_value(json_object_get(d, "latency"));
        assert_true(lat >= DELAY_MS * MS); /* nanoseconds */
        min = lat < min ? lat : min;
        max = lat > max ? lat : max;
        sum += lat;
    }
    assert_int_equal(json_integer_value(json_object_get(j, "fastest")), min);
    assert_int_equal(json_integer_value(json_object_get(j, "slowest")), max);
    assert_true(llabs(json_integer_value(json_object_get(j, "average")) - sum / 6) <= 1);
    double total_s = (double)json_integer_value(json_object_get(j, "total")) / 1e9;
    assert_true(fabs(json_real_value(json_object_get(j, "rps")) - 6 / total_s) < 1e-6);
    json_t *pct = json_object_get(j, "latencyDistribution");
    assert_int_equal(json_array_size(pct), 7);
    json_array_foreach(pct, i, d)
    {
        assert_true(json_is_integer(json_object_get(d, "percentage")));
        assert_true(json_is_integer(json_object_get(d, "latency")));
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pct, 2), "percentage")), 50);
    json_t *hist = json_object_get(j, "histogram");
    double freq = 0;
    long long counted = 0;
    json_array_foreach(hist, i, d)
    {
        assert_true(json_is_real(json_object_get(d, "mark")));
        counted += json_integer_value(json_object_get(d, "count"));
        freq += json_real_value(json_object_get(d, "frequency"));
    }
    assert_int_equal(counted, 6);
    assert_true(fabs(freq - 1.0) < 1e-9);
    /* Marks are seconds: the first is the fastest call. */
    assert_true(fabs(json_real_value(json_object_get(json_array_get(hist, 0), "mark")) -
                     (double)min / 1e9) < 1e-9);
    json_decref(j);
    free(text);

    /* The summary carries ghz's headings. */
    mem = open_memstream(&text, &size);
    assert_int_equal(cascade_load_write_summary(r, mem), 0);
    fclose(mem);
    static const char *const headings[] = {
        "Summary:",
        "Count:\t6",
        "Total:",
        "Slowest:",
        "Fastest:",
        "Average:",
        "Requests/sec:",
        "Response time histogram:",
        "Latency distribution:",
        "50 % in",
        "Status code distribution:",
        "[OK]\t6 responses",
        "Degraded answers:\t3 of 6",
    };
    for (size_t k = 0; k < sizeof headings / sizeof headings[0]; k++)
        if (!strstr(text, headings[k]))
            fail_msg("summary lacks \"%s\":\n%s", headings[k], text);
    free(text);
    cascade_load_report_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_json_mapping),
        cmocka_unit_test(test_closed_loop_counts),
        cmocka_unit_test(test_open_loop_queueing),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_errors_and_timeout),
        cmocka_unit_test(test_json_report),
        cmocka_unit_test(test_own_connection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
