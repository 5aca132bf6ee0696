/* What reading the online counters costs the ranking stages: C candidates
 * (item records with an online_base, a {ns}:ictr hash each and their
 * {ns}:ictr:totals values, as the consumer leaves them) scored through the
 * Rank stage's feature path (cascade_rank_features) and the PreRank stage's
 * (cascade_prerank_features_of), counters on and off, R rounds each; then
 * the counters' read alone: one HMGET of {ns}:ictr:totals with the parse
 * and the delta (cascade_store_online_deltas_add, what both stages call)
 * against a pipeline of one HMGET per {ns}:ictr:{id} (the per-item layout
 * Rank read before). Prints p50/p99 per round. The item caches are off, so
 * the records come from Redis. With --snapshot-items N, instead: N item
 * counter hashes and the time cascade-build load's
 * snapshot script (snapshot.h) takes to read them, the time Redis is
 * blocked: the first time (the totals rebuilt by SCAN, as after an
 * upgrade) and after, beside one plain HGETALL of the totals. Run by
 * scripts/bench/online_counters.sh against a private redis-server; figures
 * in docs/closed-loop.md.
 * Usage: cascade-bench-online_counters --redis HOST:PORT [--candidates C]
 * [--rounds R] [--snapshot-items N] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "prerank.h"
#include "rank.h"
#include "rank_features.h"
#include "snapshot.h"
#include "store.h"

#define NS "bench-online"
/* A totals value as the consumer writes it for the hash seed() writes. */
#define TOTALS "9 2 1 0 0 1 30"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* C item records with a base and their counters. */
static int seed(cascade_redis *r, size_t c)
{
    char key[CASCADE_KEY_MAX];
    for (size_t i = 0; i < c; i++) {
        cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
        rec.item_id = 1 + i;
        rec.category = 1 + (uint32_t)(i % 20);
        rec.has_stats = rec.has_online_base = true;
        rec.stats.impressions = 100 + (uint32_t)i;
        rec.stats.clicks = 10;
        rec.online_base.impressions = 5;
        if (cascade_store_put_item(r, NS, &rec) != 0)
            return -1;
        redisReply *rep = NULL;
        if (cascade_redis_command(r, &rep, "HSET %s impression 9 click 2 like 1 play 1 play_s 30",
                                  cascade_key_item_counters(key, NS, 1 + i)) != 0)
            return -1;
        freeReplyObject(rep);
        if (cascade_redis_command(r, &rep, "HSET %s %llu %s", cascade_key_item_totals(key, NS),
                                  (unsigned long long)(1 + i), TOTALS) != 0)
            return -1;
        freeReplyObject(rep);
    }
    return 0;
}

/* What is timed: one round over ids[0..c). */
struct bench_round {
    cascade_rank *rank;       /* Rank's features, or */
    cascade_prerank *prerank; /* PreRank's, or */
    int read;                 /* the read alone: 1 totals (the stages' call), 2 per item */
    cascade_redis *r;         /* for the reads */
    cascade_v1_ItemRecord *recs;
    bool *found;
    float *x;
    uint32_t *idx;
};

/* The per-item layout's read: one pipeline of HMGETs of {ns}:ictr:{id}. */
static int per_item_read(cascade_redis *r, const uint64_t *ids, size_t c)
{
    char key[CASCADE_KEY_MAX];
    int rc = 0;
    for (size_t i = 0; i < c && rc == 0; i++)
        rc = cascade_redis_append(r, "HMGET %s impression click like collect share play play_s",
                                  cascade_key_item_counters(key, NS, ids[i]));
    for (size_t i = 0; i < c; i++) {
        redisReply *rep = NULL;
        cascade_v1_ItemStats st;
        if (cascade_redis_get_reply(r, &rep) != 0 || cascade_store_item_counters_parse(rep, &st))
            rc = -1;
        freeReplyObject(rep);
    }
    return rc;
}

static int one_round(struct bench_round *b, cascade_arena *a, const uint64_t *ids, size_t c,
                     char *err, size_t errlen)
{
    int64_t deadline = cascade_now_ms() + 10000;
    if (b->rank)
        return cascade_rank_features(b->rank, a, deadline, "u1", ids, c, 1800000000, b->x, err,
                                     errlen);
    if (b->prerank)
        return cascade_prerank_features_of(b->prerank, a, deadline, "u1", ids, c, 1800000000, 20,
                                           b->idx, b->x, err, errlen);
    int rc = b->read == 1 ? cascade_store_online_deltas_add(b->r, NS, b->recs, b->found, c, a)
                          : per_item_read(b->r, ids, c);
    if (rc != 0)
        snprintf(err, errlen, "%s", cascade_redis_error(b->r));
    return rc;
}

/* p50 and p99 (ms) of R rounds of features for C candidates. */
static int run(struct bench_round b, cascade_redis *r, size_t c, int rounds, double *p50,
               double *p99)
{
    char err[512];
    uint64_t *ids = calloc(c, sizeof *ids);
    double *ms = calloc((size_t)rounds, sizeof *ms);
    cascade_arena *a = cascade_arena_create(1 << 20);
    int rc = -1;
    b.r = r;
    b.x = calloc(c * CASCADE_RANK_FEATURES, sizeof *b.x);
    b.idx = calloc(c * CASCADE_PRERANK_FEATURES, sizeof *b.idx);
    b.recs = calloc(c, sizeof *b.recs);
    b.found = calloc(c, sizeof *b.found);
    if (!ids || !b.x || !b.idx || !b.recs || !b.found || !ms || !a)
        goto out;
    for (size_t i = 0; i < c; i++)
        ids[i] = 1 + i;
    if (cascade_store_get_items(r, NS, ids, c, b.recs, b.found) != 0)
        goto out;
    for (int k = 0; k < rounds; k++) {
        cascade_arena_reset(a);
        int64_t t0 = cascade_now_us();
        if (one_round(&b, a, ids, c, err, sizeof err) != 0) {
            fprintf(stderr, "bench: %s\n", err);
            goto out;
        }
        ms[k] = (double)(cascade_now_us() - t0) / 1e3;
    }
    qsort(ms, (size_t)rounds, sizeof *ms, cmp_double);
    *p50 = ms[rounds / 2];
    *p99 = ms[(size_t)((double)rounds * 0.99)];
    rc = 0;
out:
    cascade_arena_destroy(a);
    free(ms);
    free(b.x);
    free(b.idx);
    free(b.recs);
    free(b.found);
    free(ids);
    return rc;
}

/* Seed n counter hashes (pipelined) and time one snapshot. */
static int snapshot_bench(cascade_redis *r, size_t n)
{
    char key[CASCADE_KEY_MAX], err[512];
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (cascade_redis_append(r, "HSET %s impression 9 click 2 like 1 play 1 play_s 30",
                                 cascade_key_item_counters(key, "bench-snap", 1 + i)) != 0)
            return -1;
        if (++sent == 1000 || i + 1 == n) {
            for (; sent > 0; sent--) {
                redisReply *rep = NULL;
                if (cascade_redis_get_reply(r, &rep) != 0)
                    return -1;
                freeReplyObject(rep);
            }
        }
    }
    /* No totals, as after an upgrade from the per-item layout: the first
     * snapshot rebuilds them from the per-item hashes and marks them
     * complete; the second reads them. */
    redisReply *del = NULL;
    if (cascade_redis_command(r, &del, "DEL %s", cascade_key_item_totals(key, "bench-snap")))
        return -1;
    freeReplyObject(del);
    static const char *const what[] = {"rebuilt from the per-item hashes (SCAN) and read",
                                       "read from the totals"};
    for (int k = 0; k < 2; k++) {
        cascade_snapshot snap;
        int64_t t0 = cascade_now_us();
        if (cascade_snapshot_take(r, "bench-snap", NULL, &snap, err, sizeof err) != 0) {
            fprintf(stderr, "bench: %s\n", err);
            return -1;
        }
        printf("snapshot: %zu items' counters %s in one script in %.1f ms\n", snap.n_items, what[k],
               (double)(cascade_now_us() - t0) / 1e3);
        cascade_snapshot_free(&snap);
    }
    redisReply *rep = NULL;
    int64_t t0 = cascade_now_us();
    if (cascade_redis_command(r, &rep, "HGETALL %s", cascade_key_item_totals(key, "bench-snap")))
        return -1;
    printf("snapshot: one HGETALL of the totals (%zu fields) in %.1f ms\n", rep->elements / 2,
           (double)(cascade_now_us() - t0) / 1e3);
    freeReplyObject(rep);
    return 0;
}

static cascade_prerank *make_prerank(cascade_redis_pool *pool, bool online)
{
    char err[512];
    cascade_config *cfg = cascade_config_parse(online ? "{}"
                                                      : "{\"prerank\": {\"online_counters\": "
                                                        "false}}",
                                               "bench.json", err, sizeof err);
    cascade_prerank *p =
        cfg ? cascade_prerank_create(cfg, pool, NS, NULL, NULL, err, sizeof err) : NULL;
    if (p == NULL)
        fprintf(stderr, "bench: %s\n", err);
    cascade_config_destroy(cfg);
    return p;
}

/* The four timings of one stage (or the reads) printed as a line. */
static int compare(const char *what, struct bench_round on, struct bench_round off,
                   cascade_redis *r, size_t c, int rounds)
{
    double on50, on99, off50, off99;
    if (run(off, r, c, 20, &off50, &off99) != 0 || /* warm-up */
        run(off, r, c, rounds, &off50, &off99) != 0 || run(on, r, c, rounds, &on50, &on99) != 0)
        return -1;
    printf("online_counters: %s, %zu candidates, %d rounds: %s p50 %.2f ms p99 %.2f ms; %s p50 "
           "%.2f ms p99 %.2f ms\n",
           what, c, rounds, off.read ? "per-item pipeline" : "without counters", off50, off99,
           on.read ? "one HMGET of the totals" : "with counters", on50, on99);
    return 0;
}

static cascade_rank *make_rank(cascade_redis_pool *pool, bool online)
{
    char err[512];
    cascade_config *cfg = cascade_config_parse(
        online ? "{}" : "{\"rank\": {\"online_counters\": false}}", "bench.json", err, sizeof err);
    cascade_rank *r =
        cfg ? cascade_rank_create(cfg, pool, NS, "/nonexistent", NULL, err, sizeof err) : NULL;
    if (r == NULL)
        fprintf(stderr, "bench: %s\n", err);
    cascade_config_destroy(cfg);
    return r;
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    size_t c = 2000, snapshot_items = 0;
    int rounds = 300, opt, status = 1;
    static const struct option longopts[] = {{"redis", required_argument, NULL, 'r'},
                                             {"candidates", required_argument, NULL, 'c'},
                                             {"rounds", required_argument, NULL, 'n'},
                                             {"snapshot-items", required_argument, NULL, 's'},
                                             {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'r')
            addr = optarg;
        else if (opt == 'c')
            c = (size_t)strtoul(optarg, NULL, 10);
        else if (opt == 'n')
            rounds = atoi(optarg);
        else if (opt == 's')
            snapshot_items = (size_t)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (addr == NULL || c == 0 || c > 100000 || rounds < 1) {
        fprintf(stderr, "usage: cascade-bench-online_counters --redis HOST:PORT "
                        "[--candidates 1..100000] [--rounds R>=1] [--snapshot-items N]\n");
        return 2;
    }
    char err[512];
    struct cascade_redis_tool_conn buf;
    struct cascade_redis_opts ro;
    cascade_redis_pool *pool = NULL;
    cascade_rank *on = NULL, *off = NULL;
    cascade_prerank *pre_on = NULL, *pre_off = NULL;
    if (cascade_redis_tool_opts(addr, 5000, &buf, &ro, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    if (!(pool = cascade_redis_pool_create(&ro)))
        goto out;
    if (snapshot_items > 0) {
        status = snapshot_bench(cascade_redis_pool_get(pool), snapshot_items) == 0 ? 0 : 1;
        goto out;
    }
    cascade_redis *r = cascade_redis_pool_get(pool);
    if (seed(r, c) != 0 || !(on = make_rank(pool, true)) || !(off = make_rank(pool, false)) ||
        !(pre_on = make_prerank(pool, true)) || !(pre_off = make_prerank(pool, false)))
        goto out;
    if (compare("the counters' read", (struct bench_round){.read = 1},
                (struct bench_round){.read = 2}, r, c, rounds) != 0 ||
        compare("Rank features", (struct bench_round){.rank = on},
                (struct bench_round){.rank = off}, r, c, rounds) != 0 ||
        compare("PreRank features", (struct bench_round){.prerank = pre_on},
                (struct bench_round){.prerank = pre_off}, r, c, rounds) != 0)
        goto out;
    status = 0;
out:
    if (status)
        fprintf(stderr, "bench: failed (redis %s)\n", addr);
    cascade_rank_destroy(on);
    cascade_rank_destroy(off);
    cascade_prerank_destroy(pre_on);
    cascade_prerank_destroy(pre_off);
    cascade_redis_pool_destroy(pool);
    cascade_redis_tool_wipe(&buf);
    return status;
}
