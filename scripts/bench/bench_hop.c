/* Stage hop overhead (issue 15, item 4): one payload, a ReRankRequest with a
 * fixed candidate list, sent to the ReRank stage and to a bare gRPC C-core
 * server (this program with --echo: no protobuf, no arena, one thread) in
 * alternating rounds in one run. The bare server answers /bench.Echo/Echo
 * with the request bytes (the client decodes them: more work than the
 * stage's 10-candidate answer) and /bench.Echo/Sink with an empty message
 * (less work than the stage's answer); the stage's cost sits between the
 * two, so both ratios are printed. Run by scripts/bench/hop.sh.
 *
 * Usage: cascade-bench-hop --echo --listen ADDR [--port-file F]
 *        cascade-bench-hop --stage ADDR --echo-addr ADDR [--candidates N]
 *                          [--count N] [--calls N] [--rounds N] */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "arena.h"
#include "cascade/v1/rerank.pb-c.h"
#include "clock.h"
#include "error.h"
#include "rpc.h"

/* ------------------------------------------------------------ echo server */

static volatile sig_atomic_t stop_echo;

static void on_term(int sig)
{
    (void)sig;
    stop_echo = 1;
}

/* Wait for tag on cq (polling in 200 ms steps so SIGTERM is seen). */
static int wait_tag(grpc_completion_queue *cq, void *tag)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == tag)
            return ev.success ? 0 : -1;
        if (ev.type == GRPC_QUEUE_SHUTDOWN || stop_echo)
            return -1;
    }
}

static int run_echo(const char *listen, const char *port_file)
{
    grpc_init();
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server *server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(server, cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(server, listen, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        fprintf(stderr, "cascade-bench-hop: cannot listen on %s\n", listen);
        return 1;
    }
    grpc_server_start(server);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
            fprintf(stderr, "cascade-bench-hop: cannot write %s\n", port_file);
            return 1;
        }
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    static int tag_new, tag_recv, tag_send;
    while (!stop_echo) {
        grpc_call *call = NULL;
        grpc_call_details details;
        grpc_metadata_array md;
        grpc_call_details_init(&details);
        grpc_metadata_array_init(&md);
        grpc_server_request_call(server, &call, &details, &md, cq, cq, &tag_new);
        if (wait_tag(cq, &tag_new) != 0)
            break;
        bool sink = grpc_slice_str_cmp(details.method, "/bench.Echo/Sink") == 0;
        grpc_byte_buffer *msg = NULL;
        grpc_op recv = {.op = GRPC_OP_RECV_MESSAGE};
        recv.data.recv_message.recv_message = &msg;
        if (grpc_call_start_batch(call, &recv, 1, &tag_recv, NULL) == GRPC_CALL_OK &&
            wait_tag(cq, &tag_recv) == 0 && msg) {
            int cancelled = 0;
            grpc_op ops[4];
            memset(ops, 0, sizeof ops);
            ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
            grpc_byte_buffer *empty = grpc_raw_byte_buffer_create(NULL, 0);
            ops[1].op = GRPC_OP_SEND_MESSAGE;
            ops[1].data.send_message.send_message = sink ? empty : msg;
            ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
            ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
            ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
            ops[3].data.recv_close_on_server.cancelled = &cancelled;
            if (grpc_call_start_batch(call, ops, 4, &tag_send, NULL) == GRPC_CALL_OK)
                wait_tag(cq, &tag_send);
            grpc_byte_buffer_destroy(empty);
        }
        grpc_byte_buffer_destroy(msg);
        grpc_call_unref(call);
        grpc_call_details_destroy(&details);
        grpc_metadata_array_destroy(&md);
    }
    grpc_server_shutdown_and_notify(server, cq, &tag_new);
    grpc_server_cancel_all_calls(server);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_server_destroy(server);
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    return 0;
}

/* ----------------------------------------------------------------- client */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The payload: n ranked candidates with attributes, count to keep. */
static Cascade__V1__ReRankRequest *make_request(cascade_arena *a, int n, int count)
{
    Cascade__V1__ReRankRequest *req = cascade_arena_calloc(a, 1, sizeof *req);
    cascade__v1__re_rank_request__init(req);
    Cascade__V1__UserContext *user = cascade_arena_calloc(a, 1, sizeof *user);
    cascade__v1__user_context__init(user);
    user->user_id = "u42";
    req->user = user;
    req->count = (uint32_t)count;
    req->n_candidates = (size_t)n;
    req->candidates = cascade_arena_calloc(a, (size_t)n, sizeof *req->candidates);
    for (int i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = cascade_arena_calloc(a, 1, sizeof *c);
        Cascade__V1__ItemAttributes *at = cascade_arena_calloc(a, 1, sizeof *at);
        cascade__v1__candidate__init(c);
        cascade__v1__item_attributes__init(at);
        c->item_id = (uint64_t)(1000 + i);
        c->rank_score = 1.0f - (float)i / (float)n;
        c->recall_score = 0.5f;
        c->prerank_score = 0.25f;
        at->author_id = (uint64_t)(i % 37);
        at->category = (uint32_t)(i % 11);
        at->created_at_s = 1700000000 + i;
        c->attrs = at;
        req->candidates[i] = c;
    }
    return req;
}

/* calls unary calls to one target; latencies (ns) appended to lat. */
static int run_round(cascade_rpc_channel *ch, const char *method,
                     const ProtobufCMessageDescriptor *resp_type, const ProtobufCMessage *req,
                     int calls, int64_t *lat, cascade_arena *arena)
{
    for (int i = 0; i < calls; i++) {
        struct cascade_rpc_call call = {.channel = ch,
                                        .method = method,
                                        .request = req,
                                        .response_type = resp_type,
                                        .deadline_ms = cascade_now_ms() + 5000};
        int64_t t0 = now_ns();
        int rc = cascade_rpc_call_unary(&call, arena);
        lat[i] = now_ns() - t0;
        if (rc != 0) {
            fprintf(stderr, "cascade-bench-hop: %s on %s: %s: %s\n", method,
                    cascade_rpc_channel_target(ch), cascade_grpc_status_name(call.status),
                    call.status_message);
            return -1;
        }
        cascade_arena_reset(arena);
    }
    return 0;
}

static void report(const char *name, int64_t *lat, size_t n, double *p50_us)
{
    qsort(lat, n, sizeof *lat, cmp_i64);
    *p50_us = (double)lat[n / 2] / 1e3;
    printf("%-6s calls %zu  p50 %.1f us  p90 %.1f us  p99 %.1f us\n", name, n, *p50_us,
           (double)lat[n * 9 / 10] / 1e3, (double)lat[n * 99 / 100] / 1e3);
}

static int run_client(const char *stage, const char *echo, int n, int count, int calls, int rounds)
{
    int rc = 1;
    cascade_rpc_init();
    cascade_arena *arena = cascade_arena_create(0), *req_arena = cascade_arena_create(0);
    cascade_rpc_channel *sch = cascade_rpc_channel_create(stage, 64u << 20);
    cascade_rpc_channel *ech = cascade_rpc_channel_create(echo, 64u << 20);
    size_t total = (size_t)calls * (size_t)rounds;
    int64_t *ls = malloc(sizeof *ls * total), *le = malloc(sizeof *le * total);
    int64_t *lk = malloc(sizeof *lk * total);
    if (!arena || !req_arena || !sch || !ech || !ls || !le || !lk)
        goto out;
    const ProtobufCMessage *req = &make_request(req_arena, n, count)->base;
    printf("payload: ReRankRequest, %d candidates, count %d, %zu bytes\n", n, count,
           protobuf_c_message_get_packed_size(req));
    /* Round 0 warms up (connections, caches) and is not counted. */
    for (int r = -1; r < rounds; r++) {
        size_t at = r < 0 ? 0 : (size_t)r * (size_t)calls;
        if (run_round(sch, "/cascade.v1.ReRank/ReRank", &cascade__v1__re_rank_response__descriptor,
                      req, calls, ls + at, arena) != 0 ||
            run_round(ech, "/bench.Echo/Echo", &cascade__v1__re_rank_request__descriptor, req,
                      calls, le + at, arena) != 0 ||
            run_round(ech, "/bench.Echo/Sink", &cascade__v1__re_rank_response__descriptor, req,
                      calls, lk + at, arena) != 0)
            goto out;
    }
    double ps, pe, pk;
    report("stage", ls, total, &ps);
    report("echo", le, total, &pe);
    report("sink", lk, total, &pk);
    printf("ratio stage/echo p50: %.2fx  stage/sink p50: %.2fx\n", ps / pe, ps / pk);
    rc = 0;
out:
    free(ls);
    free(le);
    free(lk);
    cascade_rpc_channel_destroy(sch);
    cascade_rpc_channel_destroy(ech);
    cascade_arena_destroy(arena);
    cascade_arena_destroy(req_arena);
    cascade_rpc_shutdown();
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"echo", no_argument, NULL, 'e'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"stage", required_argument, NULL, 's'},
        {"echo-addr", required_argument, NULL, 'a'},
        {"candidates", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'k'},
        {"calls", required_argument, NULL, 'c'},
        {"rounds", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int echo = 0, n = 300, count = 10, calls = 1000, rounds = 5, c;
    const char *listen = "127.0.0.1:0", *port_file = NULL, *stage = NULL, *echo_addr = NULL;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            echo = 1;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 's':
            stage = optarg;
            break;
        case 'a':
            echo_addr = optarg;
            break;
        case 'n':
            n = atoi(optarg);
            break;
        case 'k':
            count = atoi(optarg);
            break;
        case 'c':
            calls = atoi(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        default:
            fprintf(stderr, "cascade-bench-hop: unknown option (see the comment in bench_hop.c)\n");
            return 2;
        }
    }
    if (echo)
        return run_echo(listen, port_file);
    if (!stage || !echo_addr || n < 1 || count < 1 || calls < 10 || rounds < 1) {
        fprintf(stderr,
                "cascade-bench-hop: need --stage ADDR --echo-addr ADDR (and positive sizes)\n");
        return 2;
    }
    return run_client(stage, echo_addr, n, count, calls, rounds);
}
