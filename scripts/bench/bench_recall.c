/* Recall channel latency benchmark: for each channel, N sequential Recall
 * calls (one channel per call, like the orchestrator's fan-out) for random
 * users of a running cascade-recall, and a table of the time spent inside the
 * service (ChannelResult.latency_us) and at the client, with how many
 * candidates came back. The "full" columns restrict the percentiles to calls
 * that filled the whole quota. Errors are counted and printed, never hidden.
 * Users are u1..uU, or the ids listed in --users-file (one per line).
 * Usage: cascade-bench-recall [--addr A] [--channels a,b,...] [--requests N]
 * [--warmup W] [--quota Q] [--users U | --users-file F] [--seed S] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "clock.h"
#include "rpc.h"
#include "rng.h"

#define ALL_CHANNELS                                                                               \
    "hot,itemcf,swing,usercf,new,geo,city,follow_author,interacted_author,similar_author,cache,"   \
    "interest,demo_hot"

struct opts {
    const char *addr, *channels, *users_file;
    int requests, warmup, quota, users;
    unsigned long long seed;
    char **ids; /* from users_file, else NULL */
};

struct sample {
    int64_t service_us, client_us;
    uint32_t count;
};

static uint64_t next_rand(uint64_t *s)
{
    return cascade_rng_splitmix64(s);
}

/* One Recall call for one channel; 0 and the sample, or -1 with the status. */
static int call_once(cascade_rpc_channel *ch, cascade_arena *arena, const char *channel,
                     const char *user, int quota, struct sample *s, char *err, size_t errlen)
{
    Cascade__V1__UserContext uc = CASCADE__V1__USER_CONTEXT__INIT;
    uc.user_id = (char *)user;
    char *names[] = {(char *)channel};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.user = &uc;
    req.channels = names;
    req.n_channels = 1;
    req.quota = (uint32_t)quota;
    struct cascade_rpc_call call = {0};
    call.channel = ch;
    call.method = "/cascade.v1.Recall/Recall";
    call.request = &req.base;
    call.response_type = &cascade__v1__recall_response__descriptor;
    call.deadline_ms = cascade_now_ms() + 2000;
    int64_t t0 = cascade_now_us();
    int rc = cascade_rpc_call_unary(&call, arena);
    s->client_us = cascade_now_us() - t0;
    if (rc != 0) {
        snprintf(err, errlen, "status %d: %s", call.status, call.status_message);
        return -1;
    }
    const Cascade__V1__RecallResponse *resp = (const void *)call.response;
    s->service_us = resp->n_channels ? resp->channels[0]->latency_us : 0;
    s->count = resp->n_channels ? resp->channels[0]->count : 0;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Percentile p (0..100) of v[0..n) (sorted in place); -1 when empty. */
static double pct_ms(int64_t *v, size_t n, int p)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp64);
    size_t i = n * (size_t)p / 100;
    return (double)v[i < n ? i : n - 1] / 1e3;
}

static void print_ms(double v)
{
    if (v < 0)
        printf(" %8s |", "-");
    else
        printf(" %8.3f |", v);
}

/* Run and report one channel; returns the number of errors. */
static int bench_channel(const struct opts *o, cascade_rpc_channel *ch, const char *channel,
                         uint64_t *rng)
{
    cascade_arena *arena = cascade_arena_create(0);
    struct sample *s = calloc((size_t)o->requests, sizeof *s);
    int64_t *svc = calloc((size_t)o->requests, sizeof *svc);
    int64_t *cli = calloc((size_t)o->requests, sizeof *cli);
    int64_t *full = calloc((size_t)o->requests, sizeof *full);
    int errors = 0, done = 0;
    char err[256] = "", first[256] = "";
    for (int i = 0; i < o->warmup + o->requests; i++) {
        char user[72];
        struct sample one;
        uint64_t pick = next_rand(rng) % (uint64_t)o->users;
        if (o->ids)
            snprintf(user, sizeof user, "%s", o->ids[pick]);
        else
            snprintf(user, sizeof user, "u%llu", (unsigned long long)pick + 1);
        int rc = call_once(ch, arena, channel, user, o->quota, &one, err, sizeof err);
        cascade_arena_reset(arena);
        if (i < o->warmup)
            continue;
        if (rc != 0) {
            if (errors++ == 0)
                snprintf(first, sizeof first, "%s", err);
            continue;
        }
        s[done++] = one;
    }
    size_t n_full = 0;
    double mean = 0;
    for (int i = 0; i < done; i++) {
        svc[i] = s[i].service_us;
        cli[i] = s[i].client_us;
        mean += s[i].count;
        if (s[i].count >= (uint32_t)o->quota)
            full[n_full++] = s[i].service_us;
    }
    printf("| %-17s | %5d | %7.1f | %5.1f%% |", channel, done, done ? mean / done : 0,
           done ? 100.0 * (double)n_full / done : 0);
    print_ms(pct_ms(svc, (size_t)done, 50));
    print_ms(pct_ms(svc, (size_t)done, 99));
    print_ms(done ? (double)svc[done - 1] / 1e3 : -1);
    print_ms(pct_ms(full, n_full, 99));
    print_ms(pct_ms(cli, (size_t)done, 50));
    print_ms(pct_ms(cli, (size_t)done, 99));
    printf(" %6d |\n", errors);
    if (errors)
        fprintf(stderr, "%s: %d errors, first: %s\n", channel, errors, first);
    free(s);
    free(svc);
    free(cli);
    free(full);
    cascade_arena_destroy(arena);
    return errors;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"addr", required_argument, NULL, 'a'},     {"channels", required_argument, NULL, 'c'},
        {"requests", required_argument, NULL, 'n'}, {"warmup", required_argument, NULL, 'w'},
        {"quota", required_argument, NULL, 'q'},    {"users", required_argument, NULL, 'u'},
        {"seed", required_argument, NULL, 's'},     {"users-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            o->addr = optarg;
            break;
        case 'c':
            o->channels = optarg;
            break;
        case 'n':
            o->requests = atoi(optarg);
            break;
        case 'w':
            o->warmup = atoi(optarg);
            break;
        case 'q':
            o->quota = atoi(optarg);
            break;
        case 'u':
            o->users = atoi(optarg);
            break;
        case 's':
            o->seed = strtoull(optarg, NULL, 10);
            break;
        case 'f':
            o->users_file = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: cascade-bench-recall [--addr A] [--channels a,b,...] [--requests N]\n"
                    "       [--warmup W] [--quota Q] [--users U (ids u1..uU) | --users-file F]\n"
                    "       [--seed S]\n"
                    "default channels: " ALL_CHANNELS "\n");
            return opt == 'h' ? 1 : 2;
        }
    }
    if (o->requests < 1 || o->warmup < 0 || o->quota < 1 || o->users < 1) {
        fprintf(stderr, "cascade-bench-recall: --requests, --quota and --users must be positive\n");
        return 2;
    }
    return 0;
}

/* Read the user ids of o->users_file into o->ids / o->users. */
static int read_users(struct opts *o)
{
    FILE *f = fopen(o->users_file, "r");
    if (!f) {
        perror(o->users_file);
        return -1;
    }
    char line[128];
    size_t n = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **grown = realloc(o->ids, cap * sizeof *grown);
            if (!grown)
                break;
            o->ids = grown;
        }
        o->ids[n++] = strdup(line);
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "cascade-bench-recall: no user ids in %s\n", o->users_file);
        return -1;
    }
    o->users = (int)n;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {"127.0.0.1:50051", ALL_CHANNELS, NULL, 2000, 100, 500, 1000, 1, NULL};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.users_file && read_users(&o) != 0)
        return 2;
    cascade_rpc_init();
    cascade_rpc_channel *ch = cascade_rpc_channel_create(o.addr, 0);
    uint64_t rng = o.seed;
    int errors = 0;
    char *list = strdup(o.channels);
    if (o.ids)
        printf("recall channels: %d calls each (after %d warm-up), quota %d, %d users of %s; "
               "times in ms\n",
               o.requests, o.warmup, o.quota, o.users, o.users_file);
    else
        printf("recall channels: %d calls each (after %d warm-up), quota %d, users u1..u%d; times "
               "in ms\n",
               o.requests, o.warmup, o.quota, o.users);
    printf("| channel           | calls | mean n  | full   | svc p50  | svc p99  | svc max  | "
           "full p99 | cli p50  | cli p99  | errors |\n");
    printf("|-------------------|-------|---------|--------|----------|----------|----------|"
           "----------|----------|----------|--------|\n");
    for (char *save = NULL, *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
        errors += bench_channel(&o, ch, c, &rng);
    free(list);
    for (int i = 0; o.ids && i < o.users; i++)
        free(o.ids[i]);
    free(o.ids);
    cascade_rpc_channel_destroy(ch);
    cascade_rpc_shutdown();
    return errors ? 1 : 0;
}
