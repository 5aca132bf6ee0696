/* Recommend latency benchmark: T client threads each send N sequential
 * Recommend calls (distinct users) to a running orchestrator and the tool
 * prints throughput and latency percentiles. Errors are counted and printed,
 * never hidden. Usage: cascade-bench-recommend [--addr A] [--threads T]
 * [--requests N] [--count K] [--users U] */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cascade/v1/recommender.pb-c.h"
#include "clock.h"
#include "rpc.h"

struct worker {
    cascade_rpc_channel *ch;
    int index, requests, count, users;
    int64_t *lat_us;
    int errors;
    char first_error[256];
};

static void *run(void *arg)
{
    struct worker *w = arg;
    cascade_arena *arena = cascade_arena_create(0);
    for (int i = 0; i < w->requests; i++) {
        char user[32];
        snprintf(user, sizeof(user), "u%d", (w->index * w->requests + i) % w->users + 1);
        Cascade__V1__UserContext uc = CASCADE__V1__USER_CONTEXT__INIT;
        uc.user_id = user;
        Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
        req.user = &uc;
        req.count = (uint32_t)w->count;
        struct cascade_rpc_call call = {0};
        call.channel = w->ch;
        call.method = "/cascade.v1.Recommender/Recommend";
        call.request = &req.base;
        call.response_type = &cascade__v1__recommend_response__descriptor;
        call.deadline_ms = cascade_now_ms() + 2000;
        int64_t t0 = cascade_now_us();
        int rc = cascade_rpc_call_unary(&call, arena);
        w->lat_us[i] = cascade_now_us() - t0;
        if (rc != 0 && w->errors++ == 0)
            snprintf(w->first_error, sizeof(w->first_error), "%d: %s", call.status,
                     call.status_message);
        cascade_arena_reset(arena);
    }
    cascade_arena_destroy(arena);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:50050";
    int threads = 2, requests = 500, count = 20, users = 1000, opt;
    static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"requests", required_argument, NULL, 'n'},
                                             {"count", required_argument, NULL, 'c'},
                                             {"users", required_argument, NULL, 'u'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            addr = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'n':
            requests = atoi(optarg);
            break;
        case 'c':
            count = atoi(optarg);
            break;
        case 'u':
            users = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: cascade-bench-recommend [--addr A] [--threads T] "
                            "[--requests N per thread] [--count K] [--users U]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (threads < 1 || requests < 1 || count < 1 || users < 1) {
        fprintf(stderr, "cascade-bench-recommend: all numbers must be positive\n");
        return 2;
    }
    cascade_rpc_init();
    cascade_rpc_channel *ch = cascade_rpc_channel_create(addr, 0);
    struct worker *ws = calloc((size_t)threads, sizeof(*ws));
    pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
    int64_t *all = calloc((size_t)threads * (size_t)requests, sizeof(*all));
    int64_t t0 = cascade_now_us();
    for (int i = 0; i < threads; i++) {
        ws[i] = (struct worker){ch, i, requests, count, users, all + (size_t)i * requests, 0, ""};
        pthread_create(&tids[i], NULL, run, &ws[i]);
    }
    int errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        errors += ws[i].errors;
        if (ws[i].errors)
            fprintf(stderr, "thread %d: %d errors, first: %s\n", i, ws[i].errors,
                    ws[i].first_error);
    }
    double secs = (double)(cascade_now_us() - t0) / 1e6;
    size_t n = (size_t)threads * (size_t)requests;
    qsort(all, n, sizeof(*all), cmp64);
    printf("recommend: %zu calls, %d threads, count=%d: %.0f calls/s, latency ms p50 %.2f p90 %.2f "
           "p99 %.2f max %.2f, errors %d\n",
           n, threads, count, (double)n / secs, all[n / 2] / 1e3, all[n * 9 / 10] / 1e3,
           all[n * 99 / 100] / 1e3, all[n - 1] / 1e3, errors);
    cascade_rpc_channel_destroy(ch);
    cascade_rpc_shutdown();
    free(ws);
    free(tids);
    free(all);
    return errors ? 1 : 0;
}
