/* What reading the online counters costs a ranking stage: C candidates
 * (item records with an online_base, and a {ns}:ictr hash each) scored
 * through the Rank stage's feature path (cascade_rank_features: user
 * record, item records, then one pipeline of HMGETs of the counters) with
 * rank.online_counters on and off, R rounds each; prints p50/p99 per round
 * of both and their difference, the counters' share. The item cache is off,
 * so both read the records from Redis. With --snapshot-items N, instead:
 * N item counter hashes and the time cascade-build load's snapshot script
 * (snapshot.h) takes to read them, the time Redis is blocked. Run by
 * scripts/bench/online_counters.sh against a private redis-server; figures in
 * docs/closed-loop.md.
 * Usage: cascade-bench-online_counters --redis HOST:PORT [--candidates C]
 * [--rounds R] [--snapshot-items N] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "rank.h"
#include "rank_features.h"
#include "snapshot.h"
#include "store.h"

#define NS "bench-online"

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
    }
    return 0;
}

/* p50 and p99 (ms) of R rounds of features for C candidates. */
static int run(cascade_rank *rank, size_t c, int rounds, double *p50, double *p99)
{
    char err[512];
    uint64_t *ids = calloc(c, sizeof *ids);
    float *x = calloc(c * CASCADE_RANK_FEATURES, sizeof *x);
    double *ms = calloc((size_t)rounds, sizeof *ms);
    cascade_arena *a = cascade_arena_create(1 << 20);
    int rc = -1;
    if (!ids || !x || !ms || !a)
        goto out;
    for (size_t i = 0; i < c; i++)
        ids[i] = 1 + i;
    for (int k = 0; k < rounds; k++) {
        cascade_arena_reset(a);
        int64_t t0 = cascade_now_us();
        if (cascade_rank_features(rank, a, cascade_now_ms() + 10000, "u1", ids, c, 1800000000, x,
                                  err, sizeof err) != 0) {
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
    free(x);
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
    cascade_snapshot snap;
    int64_t t0 = cascade_now_us();
    if (cascade_snapshot_take(r, "bench-snap", NULL, &snap, err, sizeof err) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return -1;
    }
    printf("snapshot: %zu item counter hashes read in one script in %.1f ms\n", snap.n_items,
           (double)(cascade_now_us() - t0) / 1e3);
    cascade_snapshot_free(&snap);
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
    double on50, on99, off50, off99;
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
    if (seed(cascade_redis_pool_get(pool), c) != 0 || !(on = make_rank(pool, true)) ||
        !(off = make_rank(pool, false)))
        goto out;
    if (run(off, c, 20, &off50, &off99) != 0 || /* warm-up */
        run(off, c, rounds, &off50, &off99) != 0 || run(on, c, rounds, &on50, &on99) != 0)
        goto out;
    printf("online_counters: %zu candidates, %d rounds: features without counters p50 %.2f ms "
           "p99 %.2f ms; with counters p50 %.2f ms p99 %.2f ms; the counters' read p50 +%.2f ms\n",
           c, rounds, off50, off99, on50, on99, on50 - off50);
    status = 0;
out:
    if (status)
        fprintf(stderr, "bench: failed (redis %s)\n", addr);
    cascade_rank_destroy(on);
    cascade_rank_destroy(off);
    cascade_redis_pool_destroy(pool);
    cascade_redis_tool_wipe(&buf);
    return status;
}
