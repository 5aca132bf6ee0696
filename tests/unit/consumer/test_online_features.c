/* The online counters in the rank features, against a private redis-server:
 * - exactly once across the nightly build: cascade-build load snapshots the
 *   counters and the committed partition lengths, so for every item the
 *   record's statistics plus (counter − online_base) count each event once:
 *   with a batch written to its partition but not yet committed at the
 *   snapshot (a later batch, and the very first one), and with the consumer
 *   applying a backlog while load runs;
 * - parity: a log whose head went through load and whose tail went through
 *   the stream and the consumer (counters and partitions), served by the
 *   Rank stage's own feature path at each serve record's time, gives the
 *   item features the trainer's replay (cascade_rank_examples_build over the
 *   head and the partitions) computes for the same impressions, bit for bit;
 *   The same for the PreRank stage against the pre-rank trainer's replay
 *   (cascade_prerank_examples_build): the hashed item columns and the
 *   heuristic score that use the statistics;
 * - the compact copy the stages read ({ns}:ictr:totals) equals the per-item
 *   hashes after every batch, redelivered entries included;
 * - degrade: counters that cannot be read score with the nightly statistics,
 *   counted, and the request does not fail (Rank and PreRank). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "arena.h"
#include "build_cli.h"
#include "clock.h"
#include "config.h"
#include "consumer.h"
#include "consumer_service.h"
#include "consumer_test.h"
#include "dataset.h"
#include "error.h"
#include "metrics.h"
#include "prerank.h"
#include "prerank_features.h"
#include "rank.h"
#include "rank_features.h"
#include "store.h"
#include "support.h"
#include "train_prerank.h"
#include "train_rank.h"
#include "user_online.h"

#define N_ITEMS 8
#define FIRST_ITEM 101
#define N_USERS 4
/* 2026-12-06 00:00:00 UTC: the head's first event; the tail stays that day. */
#define T0 1796515200LL
/* The affinity half-life of load and of the trainers' replay (0.05 days,
 * 72 min: the decay matters within the test's hour and a half). */
#define HALF_LIFE_DAYS "0.05"

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

/* What the test sent, counted by the test itself: per item, the events the
 * records plus the deltas must hold; per user (u1..u4), the counts the
 * record plus its online events must hold. */
struct expect {
    uint32_t impressions[N_ITEMS], clicks[N_ITEMS], likes[N_ITEMS], collects[N_ITEMS];
    uint32_t shares[N_ITEMS], plays[N_ITEMS];
    double play_s[N_ITEMS];
    uint32_t user_impressions[N_USERS + 1], user_clicks[N_USERS + 1];
    uint32_t user_interactions[N_USERS + 1];
};

static const char *const TYPES[] = {"click", "like", "collect", "share", "play", "impression"};

static void count(struct expect *x, size_t item, const char *type, double value)
{
    size_t i = item - FIRST_ITEM;
    if (strcmp(type, "click") == 0)
        x->clicks[i]++;
    else if (strcmp(type, "like") == 0)
        x->likes[i]++;
    else if (strcmp(type, "collect") == 0)
        x->collects[i]++;
    else if (strcmp(type, "share") == 0)
        x->shares[i]++;
    else if (strcmp(type, "play") == 0) {
        x->plays[i]++;
        x->play_s[i] += value;
    }
    /* A client impression counts for nothing here (docs/closed-loop.md). */
}

/* An event of user "u<u>" as the build counts it: a served or logged
 * impression, or any other behaviour (client impressions are not sent
 * here: they count for nothing). */
static void count_user(struct expect *x, unsigned u, const char *type)
{
    if (strcmp(type, "impression") == 0) {
        x->user_impressions[u]++;
        return;
    }
    x->user_interactions[u]++;
    x->user_clicks[u] += strcmp(type, "click") == 0;
}

/* users.tsv, items.tsv (101..104 notes, 105..108 videos of 60 s) and a head
 * events.tsv of 48 events in the hour before T0, counted into x. */
static void write_world(const char *dir, struct expect *x)
{
    char items[2048] = "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\t"
                       "duration_s\n";
    char events[8192] = "ts\tuser_id\titem_id\ttype\tvalue\n";
    memset(x, 0, sizeof *x);
    assert_int_equal(
        test_write_file(
            dir, "users.tsv",
            "user_id\tage\tgender\tcity\tgeohash\tinterests\n"
            "u1\t30\t1\t1\t\t1\nu2\t25\t2\t2\t\t2\nu3\t40\t1\t1\t\t\nu4\t20\t3\t3\t\t3\n"),
        0);
    for (int i = 0; i < N_ITEMS; i++) {
        bool video = i >= N_ITEMS / 2;
        snprintf(items + strlen(items), sizeof items - strlen(items),
                 "%d\t%d\t%d\t\t%lld\t\t%d\t%d\t%d\n", FIRST_ITEM + i, 1 + i % 3, 1 + i % 3,
                 T0 - 86400LL * (1 + i), 1 + i % 3, video ? 2 : 1, video ? 60 : 0);
    }
    assert_int_equal(test_write_file(dir, "items.tsv", items), 0);
    for (int k = 0; k < 48; k++) {
        size_t item = FIRST_ITEM + (size_t)(k * 5 % N_ITEMS);
        const char *type = k % 3 == 0 ? "impression" : TYPES[k % 5];
        double value = strcmp(type, "play") == 0 ? 10 + k % 7 : 0;
        snprintf(events + strlen(events), sizeof events - strlen(events),
                 "%lld\tu%d\t%zu\t%s\t%g\n", T0 - 3600 + k * 10, 1 + k % N_USERS, item, type,
                 value);
        if (strcmp(type, "impression") == 0)
            x->impressions[item - FIRST_ITEM]++; /* the log's impressions */
        else
            count(x, item, type, value);
        count_user(x, 1 + (unsigned)k % N_USERS, type);
    }
    assert_int_equal(test_write_file(dir, "events.tsv", events), 0);
}

static int run_load(void **state, const char *dir, const char *ns)
{
    char port[16];
    snprintf(port, sizeof port, "127.0.0.1:%d", fx(state)->server.port);
    /* The affinity half-life set, as the trainer's below: derived from the
     * log's span, it would differ between the head and head + tail. */
    const char *argv[] = {"cascade-build", "load",
                          "--data",        dir,
                          "--redis",       port,
                          "--namespace",   ns,
                          "--quiet",       "--affinity-half-life-days",
                          HALF_LIFE_DAYS};
    return cascade_build_main(11, (char **)argv);
}

/* A Feedback event (value in seconds for play) at ts. */
static void add_event(void **state, const char *ns, const char *user, size_t item, const char *type,
                      double value, long long ts)
{
    char value_s[32];
    snprintf(value_s, sizeof value_s, "%g", value);
    consumer_test_add_event(fx(state)->conn, ns, user, item, type, value_s, ts);
}

/* A serve record of items[0..n) served at ts (s) + 250 ms. */
static void add_serve(void **state, const char *ns, const char *user, const size_t *items, size_t n,
                      long long ts)
{
    char list[256] = "", ts_ms[32];
    for (size_t j = 0; j < n; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%zu:%zu:r:1:1", j ? "," : "",
                 items[j], j);
    snprintf(ts_ms, sizeof ts_ms, "%lld", ts * 1000 + 250);
    consumer_test_add_serve(fx(state)->conn, ns, user, list, ts_ms);
}

/* The k-th entry of a deterministic tail: a serve record of three items
 * (every third entry) or a Feedback event, at ts. Counted into x. */
static void add_tail_entry(void **state, const char *ns, unsigned k, long long ts, struct expect *x)
{
    char user[8];
    snprintf(user, sizeof user, "u%u", 1 + k % N_USERS);
    if (k % 3 == 0) {
        size_t items[3];
        for (size_t j = 0; j < 3; j++) {
            items[j] = FIRST_ITEM + (k / 3 + 3 * j) % N_ITEMS;
            x->impressions[items[j] - FIRST_ITEM]++;
            count_user(x, 1 + k % N_USERS, "impression");
        }
        add_serve(state, ns, user, items, 3, ts);
        return;
    }
    size_t item = FIRST_ITEM + (k * 7 + k / 5) % N_ITEMS;
    const char *type = TYPES[(k * 3 + k / 7) % 6];
    double value = strcmp(type, "play") == 0 ? (double)(5 + k % 50) : 0;
    count(x, item, type, value);
    if (strcmp(type, "impression") != 0) /* a client impression */
        count_user(x, 1 + k % N_USERS, type);
    add_event(state, ns, user, item, type, value, ts);
}

static cascade_consumer *make_consumer(const char *ns, const char *dir, uint32_t batch)
{
    char err[256];
    struct cascade_consumer_opts o;
    assert_int_equal(cascade_consumer_config(NULL, &o, err, sizeof err), 0);
    o.ns = ns;
    o.name = "t";
    o.batch = batch;
    o.data_dir = dir;
    cascade_consumer *c = cascade_consumer_create(&o, NULL, err, sizeof err);
    if (c == NULL)
        fail_msg("consumer: %s", err);
    return c;
}

/* A consumer of namespace ns writing partitions into dir, through the
 * first n entries of the deterministic tail (counted into x), all applied. */
static cascade_consumer *consumer_through_tail(void **state, const char *ns, const char *dir,
                                               unsigned n, struct expect *x)
{
    cascade_redis *r = fx(state)->conn;
    size_t applied = 0;
    cascade_consumer *c = make_consumer(ns, dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    for (unsigned k = 0; k < n; k++)
        add_tail_entry(state, ns, k, T0 + 100 + k, x);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, n);
    return c;
}

static double hget(void **state, const char *key, const char *field)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "HGET %s %s", key, field), 0);
    double v = rep->type == REDIS_REPLY_STRING ? strtod(rep->str, NULL) : 0.0;
    freeReplyObject(rep);
    return v;
}

/* {ns}:ictr:totals holds, for every item with a counter hash and only for
 * those, the same statistics as the hash. Returns how many items it holds. */
static size_t check_totals(void **state, const char *ns)
{
    char key[CASCADE_KEY_MAX], tkey[CASCADE_KEY_MAX];
    size_t held = 0;
    cascade_key_item_totals(tkey, ns);
    for (size_t i = 0; i < N_ITEMS; i++) {
        redisReply *per = NULL, *tot = NULL;
        cascade_key_item_counters(key, ns, FIRST_ITEM + i);
        assert_int_equal(cascade_redis_command(fx(state)->conn, &per,
                                               "HMGET %s impression click like collect share play "
                                               "play_s",
                                               key),
                         0);
        assert_int_equal(
            cascade_redis_command(fx(state)->conn, &tot, "HGET %s %d", tkey, FIRST_ITEM + (int)i),
            0);
        bool has_hash = false;
        for (size_t f = 0; f < per->elements; f++)
            has_hash |= per->element[f]->type == REDIS_REPLY_STRING;
        assert_int_equal(has_hash, tot->type == REDIS_REPLY_STRING);
        if (has_hash) {
            cascade_v1_ItemStats a, b;
            assert_int_equal(cascade_store_item_counters_parse(per, &a), 0);
            assert_int_equal(cascade_store_item_totals_parse(tot->str, tot->len, &b), 0);
            assert_memory_equal(&a, &b, sizeof a);
            held++;
        }
        freeReplyObject(per);
        freeReplyObject(tot);
    }
    return held;
}

/* For every user: the record's counts continued with its online events
 * (those numbered after the snapshot, common/user_online.h) == what was sent
 * (the test's own count). Returns the events the online part held. */
static size_t check_users_exactly_once(void **state, const char *ns, const struct expect *x)
{
    size_t online = 0;
    cascade_arena *a = cascade_arena_create(1 << 16);
    assert_non_null(a);
    for (unsigned u = 1; u <= N_USERS; u++) {
        char id[8];
        cascade_v1_UserRecord rec;
        bool found = false;
        size_t n = 0;
        snprintf(id, sizeof id, "u%u", u);
        assert_int_equal(cascade_store_get_user(fx(state)->conn, ns, id, &rec, &found), 0);
        assert_true(found);
        assert_int_equal(
            cascade_user_online_apply(fx(state)->conn, ns, &rec, true, T0 + 90000, a, &n), 0);
        if (rec.impressions != x->user_impressions[u] || rec.clicks != x->user_clicks[u] ||
            rec.interactions != x->user_interactions[u])
            fail_msg("%s: record + online events count %u impressions, %u clicks, %u "
                     "interactions; sent %u, %u, %u",
                     id, rec.impressions, rec.clicks, rec.interactions, x->user_impressions[u],
                     x->user_clicks[u], x->user_interactions[u]);
        online += n;
    }
    cascade_arena_destroy(a);
    return online;
}

/* For every item: record stats + (counter − base) == what was sent, counted
 * here with the test's own arithmetic. *in_delta gets the events the deltas
 * hold (to show that both sides were used). */
static void check_exactly_once(void **state, const char *ns, const struct expect *x,
                               size_t *in_delta)
{
    uint64_t ids[N_ITEMS];
    cascade_v1_ItemRecord rec[N_ITEMS];
    bool found[N_ITEMS];
    char key[CASCADE_KEY_MAX];
    for (size_t i = 0; i < N_ITEMS; i++)
        ids[i] = FIRST_ITEM + i;
    assert_int_equal(cascade_store_get_items(fx(state)->conn, ns, ids, N_ITEMS, rec, found), 0);
    *in_delta = 0;
    for (size_t i = 0; i < N_ITEMS; i++) {
        assert_true(found[i]);
        assert_true(rec[i].has_online_base);
        const cascade_v1_ItemStats *s = &rec[i].stats, *b = &rec[i].online_base;
        cascade_key_item_counters(key, ns, ids[i]);
        double imp = hget(state, key, "impression") - b->impressions;
        double clk = hget(state, key, "click") - b->clicks;
        double lik = hget(state, key, "like") - b->likes;
        double col = hget(state, key, "collect") - b->collects;
        double sha = hget(state, key, "share") - b->shares;
        double ply = hget(state, key, "play") - b->plays;
        double pls = hget(state, key, "play_s") - b->play_seconds;
        assert_true(s->impressions + imp == x->impressions[i]);
        assert_true(s->clicks + clk == x->clicks[i]);
        assert_true(s->likes + lik == x->likes[i]);
        assert_true(s->collects + col == x->collects[i]);
        assert_true(s->shares + sha == x->shares[i]);
        assert_true(s->plays + ply == x->plays[i]);
        assert_true(s->play_seconds + pls == x->play_s[i]);
        *in_delta += (size_t)(imp + clk + lik + col + sha + ply);
    }
    check_totals(state, ns);
    check_users_exactly_once(state, ns, x);
}

/* What the consumer leaves between its append and its script: n clicks
 * (u2 on item 102, after the tail's times) in the stream and appended to
 * the day partition, not committed. Then load runs, the consumer's next
 * step applies them (cutting and writing them again), and each event is
 * counted once, the n clicks in the delta only. */
static void uncommitted_clicks_then_load(void **state, cascade_consumer *c, const char *dir,
                                         const char *ns, int n, struct expect *x)
{
    char path[512];
    size_t applied = 0, in_delta = 0;
    snprintf(path, sizeof path, "%s/events/2026-12-06.tsv", dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    for (int k = 0; k < n; k++) {
        add_event(state, ns, "u2", FIRST_ITEM + 1, "click", 0, T0 + 5000 + k);
        count(x, FIRST_ITEM + 1, "click", 0);
        count_user(x, 2, "click");
        fprintf(f, "%lld\tu2\t%d\tclick\t0\n", T0 + 5000 + k, FIRST_ITEM + 1);
    }
    fclose(f);
    assert_int_equal(run_load(state, dir, ns), CASCADE_BUILD_EXIT_OK);
    assert_int_equal(cascade_consumer_step(c, fx(state)->conn, 0, &applied), 0);
    assert_int_equal(applied, (size_t)n);
    check_exactly_once(state, ns, x, &in_delta);
    assert_int_equal(in_delta, (size_t)n);
}

/* A batch written to its partition but not committed when load takes its
 * snapshot (the consumer between its append and its script) is left out
 * of the records: the consumer cuts it, writes it again and counts it, so it
 * is in the delta only. Reading the partition whole would count it twice. */
static void test_uncommitted_batch_at_snapshot(void **state)
{
    char dir[256];
    struct expect x;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    cascade_consumer *c = consumer_through_tail(state, "unc", dir, 12, &x);
    /* Three clicks the consumer has read and appended, not yet committed. */
    uncommitted_clicks_then_load(state, c, dir, "unc", 3, &x);
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* The very first batch the consumer writes, caught by the snapshot between
 * its append and its script (what test_consumer_running_during_load once hit
 * under load): the consumer committed the new partition's starting length
 * (0) before writing, so load reads none of it and the batch is in the
 * delta only. */
static void test_first_batch_at_snapshot(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], path[512], key[CASCADE_KEY_MAX];
    struct expect x;
    redisReply *rep = NULL;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    cascade_consumer *c = make_consumer("fst", dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    /* The consumer's state: start committed, two clicks appended. */
    assert_int_equal(cascade_redis_command(r, &rep, "HSETNX %s 2026-12-06 0",
                                           cascade_key_loop_partitions(key, "fst")),
                     0);
    freeReplyObject(rep);
    snprintf(path, sizeof path, "%s/events", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    uncommitted_clicks_then_load(state, c, dir, "fst", 2, &x);
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* Redis loses the namespace (it came back empty, or load --flush): the
 * committed partition lengths go with it, and the consumer commits only the
 * partitions it writes next. The older partitions, whose events the lost
 * counters held, are read whole by the next load (to their size when it
 * listed them), not skipped: every event is counted once, in the records. */
static void test_lost_commits_read_whole(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256];
    struct expect x;
    size_t applied = 0, in_delta = 0;
    redisReply *rep = NULL;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    cascade_consumer *c = consumer_through_tail(state, "lost", dir, 12, &x);
    cascade_consumer_destroy(c);
    /* Everything of the namespace is gone; the partition stays on disk. */
    assert_int_equal(cascade_redis_command(r, &rep, "EVAL %s 0 lost:*",
                                           "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                                           "redis.call('DEL', k) end return 1"),
                     0);
    freeReplyObject(rep);
    /* The restarted consumer writes a click of the next day. */
    c = make_consumer("lost", dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    add_event(state, "lost", "u2", FIRST_ITEM + 1, "click", 0, T0 + 86400 + 10);
    count(&x, FIRST_ITEM + 1, "click", 0);
    count_user(&x, 2, "click");
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(run_load(state, dir, "lost"), CASCADE_BUILD_EXIT_OK);
    check_exactly_once(state, "lost", &x, &in_delta);
    assert_int_equal(in_delta, 0); /* all of it in the records */
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* load --as-of T with online counters: the log's events after T would be
 * in neither the records (as_of leaves them out) nor the delta (the
 * counters, stored as the base, hold them). Refused, nothing written. */
static void test_as_of_with_counters_refused(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], port[16], as_of[32], key[CASCADE_KEY_MAX];
    struct expect x;
    redisReply *rep = NULL;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    cascade_consumer *c = consumer_through_tail(state, "asof", dir, 6, &x);
    snprintf(port, sizeof port, "127.0.0.1:%d", fx(state)->server.port);
    snprintf(as_of, sizeof as_of, "%lld", (long long)(T0 + 100));
    const char *argv[] = {"cascade-build", "load", "--data",  dir,   "--redis", port,
                          "--namespace",   "asof", "--as-of", as_of, "--quiet"};
    assert_int_not_equal(cascade_build_main(11, (char **)argv), CASCADE_BUILD_EXIT_OK);
    assert_int_equal(
        cascade_redis_command(r, &rep, "EXISTS %s", cascade_key_item(key, "asof", FIRST_ITEM)), 0);
    assert_int_equal(rep->integer, 0); /* no record written */
    freeReplyObject(rep);
    /* Without --as-of the same load runs. */
    assert_int_equal(run_load(state, dir, "asof"), CASCADE_BUILD_EXIT_OK);
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* A corrupt totals value fails load with the item named (not a silent base
 * of 0); deleting the totals, as the message says, lets the next load
 * rebuild them from the per-item counters, exactly once again. */
static void test_corrupt_totals_refused_then_rebuilt(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], key[CASCADE_KEY_MAX];
    struct expect x;
    size_t in_delta = 0;
    redisReply *rep = NULL;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    cascade_consumer *c = consumer_through_tail(state, "bad", dir, 9, &x);
    assert_int_equal(run_load(state, dir, "bad"), CASCADE_BUILD_EXIT_OK);
    assert_int_equal(cascade_redis_command(r, &rep, "HSET %s %d %s",
                                           cascade_key_item_totals(key, "bad"), FIRST_ITEM,
                                           "1 2 3"),
                     0);
    freeReplyObject(rep);
    assert_int_not_equal(run_load(state, dir, "bad"), CASCADE_BUILD_EXIT_OK);
    assert_int_equal(cascade_redis_command(r, &rep, "DEL %s", key), 0);
    freeReplyObject(rep);
    assert_int_equal(run_load(state, dir, "bad"), CASCADE_BUILD_EXIT_OK);
    check_exactly_once(state, "bad", &x, &in_delta);
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* Entries not yet applied by the consumer, over both streams (XINFO GROUPS
 * lag + pending). */
static long long backlog(void **state, const char *ns)
{
    char key[CASCADE_KEY_MAX];
    long long left = 0;
    for (int s = 0; s < 2; s++) {
        redisReply *rep = NULL;
        assert_int_equal(
            cascade_redis_command(fx(state)->conn, &rep, "XINFO GROUPS %s",
                                  s ? cascade_key_serves(key, ns) : cascade_key_events(key, ns)),
            0);
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
            left += 1; /* the group is not there yet */
        for (size_t g = 0; g < rep->elements; g++) {
            const redisReply *grp = rep->element[g];
            for (size_t k = 0; k + 1 < grp->elements; k += 2) {
                const char *name = grp->element[k]->str;
                const redisReply *v = grp->element[k + 1];
                if ((strcmp(name, "pending") == 0 || strcmp(name, "lag") == 0) &&
                    v->type == REDIS_REPLY_INTEGER)
                    left += v->integer;
                else if (strcmp(name, "lag") == 0)
                    left += 1; /* lag unknown (nil): not drained for sure */
            }
        }
        freeReplyObject(rep);
    }
    return left;
}

/* The consumer runs (its own thread, small batches) through a backlog while
 * load snapshots and rebuilds the records, and through more entries after:
 * every event is counted once, in a record or in a delta. */
static void test_consumer_running_during_load(void **state)
{
    char dir[256], err[256];
    struct expect x;
    size_t in_delta = 0;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    /* The nightly load before this one: the consumer appends a user's event
     * to {ns}:uev:{uid} only for items with a record (the build's log keeps
     * only the events of items it knows), so the items must have records
     * when it applies the events the load below does not see. */
    assert_int_equal(run_load(state, dir, "run"), CASCADE_BUILD_EXIT_OK);
    struct cascade_consumer_opts o;
    assert_int_equal(cascade_consumer_config(NULL, &o, err, sizeof err), 0);
    o.ns = "run";
    o.name = "loop";
    o.batch = 4;
    o.data_dir = dir;
    struct cascade_redis_opts ro = {.host = "127.0.0.1",
                                    .port = fx(state)->server.port,
                                    .connect_timeout_ms = 500,
                                    .command_timeout_ms = 2000};
    cascade_consumer_loop *loop = cascade_consumer_loop_start(&o, &ro, 20, NULL, err, sizeof err);
    if (loop == NULL)
        fail_msg("consumer loop: %s", err);
    unsigned k = 0;
    for (; k < 600; k++)
        add_tail_entry(state, "run", k, T0 + 100 + k, &x);
    long long at_load = backlog(state, "run");
    assert_int_equal(run_load(state, dir, "run"), CASCADE_BUILD_EXIT_OK);
    for (; k < 800; k++)
        add_tail_entry(state, "run", k, T0 + 100 + k, &x);
    /* Poll the group until it has applied everything (60 s at most). */
    int64_t give_up = cascade_now_ms() + 60000;
    while (backlog(state, "run") > 0 && cascade_now_ms() < give_up) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(backlog(state, "run"), 0);
    cascade_consumer_loop_stop(loop);
    check_exactly_once(state, "run", &x, &in_delta);
    print_message("consumer backlog when load started: %lld entries; events only in the deltas: "
                  "%zu\n",
                  at_load, in_delta);
    assert_true(in_delta > 0);
    test_rmdir(dir);
}

/* The whole {ns}:ictr:totals hash as text (HGETALL, fields sorted). */
static char *totals_text(void **state, const char *ns)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "HGETALL %s",
                                           cascade_key_item_totals(key, ns)),
                     0);
    char *text = calloc(1, 16384);
    assert_non_null(text);
    for (size_t f = 0; f < N_ITEMS + 1; f++) /* fields in item order */
        for (size_t i = 0; i + 1 < rep->elements; i += 2)
            if (strtoull(rep->element[i]->str, NULL, 10) == FIRST_ITEM + f)
                snprintf(text + strlen(text), 16384 - strlen(text), "%s=%s\n", rep->element[i]->str,
                         rep->element[i + 1]->str);
    freeReplyObject(rep);
    return text;
}

/* The compact totals equal the per-item hashes after every batch (small
 * batches mixing serve records and every Feedback type), and the whole group
 * delivered again changes neither; record + delta still count each event
 * once, before and after a second load that reads the totals. */
static void test_totals_follow_every_batch(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], key[CASCADE_KEY_MAX];
    struct expect x;
    size_t applied = 0, in_delta = 0, total = 0;
    assert_non_null(test_tempdir(dir, sizeof dir));
    write_world(dir, &x);
    assert_int_equal(run_load(state, dir, "tot"), CASCADE_BUILD_EXIT_OK);
    cascade_consumer *c = make_consumer("tot", dir, 5);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    for (unsigned k = 0; k < 90; k++)
        add_tail_entry(state, "tot", k, T0 + 100 + k, &x);
    do {
        assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
        total += applied;
        check_totals(state, "tot");
    } while (applied > 0);
    assert_int_equal(total, 90);
    assert_int_equal(check_totals(state, "tot"), N_ITEMS);
    char *before = totals_text(state, "tot");
    consumer_test_redeliver(r, cascade_key_events(key, "tot"));
    consumer_test_redeliver(r, cascade_key_serves(key, "tot"));
    do {
        assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
        assert_int_equal(applied, 0);
        check_totals(state, "tot");
    } while (backlog(state, "tot") > 0);
    char *after = totals_text(state, "tot");
    assert_string_equal(before, after);
    check_exactly_once(state, "tot", &x, &in_delta);
    assert_true(in_delta > 0);
    /* A second load snapshots the totals its first one marked complete
     * (read, not rebuilt): now the records hold everything. */
    assert_int_equal(run_load(state, dir, "tot"), CASCADE_BUILD_EXIT_OK);
    check_exactly_once(state, "tot", &x, &in_delta);
    assert_int_equal(in_delta, 0);
    free(before);
    free(after);
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* ---------------------------------------------------------------- parity */

/* A served feature row: item features of (user, item) at ts. */
struct served {
    char user[8];
    uint64_t item;
    int64_t ts;
    float x[CASCADE_RANK_FEATURES];
    float nightly[CASCADE_RANK_FEATURES];   /* the record's statistics alone */
    uint32_t pre[CASCADE_PRERANK_FEATURES]; /* PreRank's hashed features */
    float heuristic, heuristic_nightly;     /* PreRank's heuristic, with and without */
    bool first; /* the serve record's first item (counted: 100 requests) */
};

/* The config of a stage ("rank", "prerank"): empty when online (the
 * counters and the user events are on by default), else
 * <stage>.online_counters and <stage>.online_user false. */
static cascade_config *stage_config(const char *stage, bool online)
{
    char text[160] = "{}", err[512];
    if (!online)
        snprintf(text, sizeof text,
                 "{\"%s\": {\"online_counters\": false, \"online_user\": false}}", stage);
    cascade_config *cfg = cascade_config_parse(text, "t.json", err, sizeof err);
    if (cfg == NULL)
        fail_msg("config: %s", err);
    return cfg;
}

static cascade_prerank *make_prerank(void **state, const char *ns, bool online, cascade_metrics *m)
{
    char err[512];
    cascade_config *cfg = stage_config("prerank", online);
    cascade_prerank *p = cascade_prerank_create(cfg, fx(state)->pool, ns, NULL, m, err, sizeof err);
    if (p == NULL)
        fail_msg("prerank: %s", err);
    cascade_config_destroy(cfg);
    return p;
}

static void prerank_features(cascade_prerank *p, const char *user, const size_t *items, size_t n,
                             int64_t ts, unsigned bits, uint32_t *idx, float *heuristic)
{
    char err[512];
    uint64_t ids[N_ITEMS];
    cascade_arena *a = cascade_arena_create(1 << 16);
    for (size_t j = 0; j < n; j++)
        ids[j] = items[j];
    int rc = cascade_prerank_features_of(p, a, cascade_now_ms() + 10000, user, ids, n, ts, bits,
                                         idx, heuristic, err, sizeof err);
    if (rc != 0)
        fail_msg("prerank features: %s", err);
    cascade_arena_destroy(a);
}

/* The columns computed from the item record (rank_features.c: item_features). */
static bool item_column(size_t c)
{
    return c <= 5 || (c >= 9 && c <= 11);
}

/* user_log_activity: the user's interaction count alone (no decay), so a
 * row where it differs from the nightly one saw the user's online events. */
#define USER_LOG_ACTIVITY 12

static cascade_rank *make_rank(void **state, const char *ns, const char *model_dir, bool online,
                               cascade_metrics *m)
{
    char err[512];
    cascade_config *cfg = stage_config("rank", online);
    cascade_rank *r = cascade_rank_create(cfg, fx(state)->pool, ns, model_dir, m, err, sizeof err);
    if (r == NULL)
        fail_msg("rank: %s", err);
    cascade_config_destroy(cfg);
    return r;
}

static void serve_features(cascade_rank *r, const char *user, const size_t *items, size_t n,
                           int64_t ts, float *out)
{
    char err[512];
    uint64_t ids[8];
    cascade_arena *a = cascade_arena_create(1 << 16);
    for (size_t j = 0; j < n; j++)
        ids[j] = items[j];
    int rc = cascade_rank_features(r, a, cascade_now_ms() + 10000, user, ids, n, ts, out, err,
                                   sizeof err);
    if (rc != 0)
        fail_msg("rank features: %s", err);
    cascade_arena_destroy(a);
}

/* The trainer's row of the impression of (user, item) at ts, or -1. */
static long trainer_row(const cascade_dataset *ds, const struct cascade_rank_examples *ex,
                        const struct served *s)
{
    for (size_t r = 0; r < ex->n; r++) {
        const struct cascade_ds_event *e = &ds->events[ex->event[r]];
        if (e->ts == s->ts && ds->items[e->item].id == s->item &&
            strcmp(ds->users[e->user].id, s->user) == 0)
            return (long)r;
    }
    return -1;
}

/* The trainers' replay of the data directory dir (events.tsv + the
 * partitions the consumer wrote), every impression an example: train-rank's
 * rows into *ex and, in the same order, train-prerank's (options po) into
 * *pex; the dataset into *ds. */
static void trainers_replay(const char *dir, struct cascade_train_prerank_opts *po,
                            cascade_dataset **ds, struct cascade_rank_examples *ex,
                            struct cascade_prerank_examples *pex)
{
    char err[512];
    struct cascade_train_rank_opts o;
    cascade_train_rank_defaults(&o);
    o.warmup_frac = 0;
    o.holdout_frac = 0;
    o.quiet = true;
    o.affinity_half_life_days = strtod(HALF_LIFE_DAYS, NULL);
    assert_int_equal(cascade_dataset_read(dir, ds, err, sizeof err), 0);
    assert_int_equal(cascade_rank_examples_build(*ds, &o, ex, err, sizeof err), 0);
    po->examples = o;
    assert_int_equal(cascade_prerank_examples_build(*ds, po, pex, err, sizeof err), 0);
    assert_int_equal(pex->n, ex->n);
}

/* The head through load, the tail through the stream and the consumer; at
 * every serve record, the Rank stage computes its items' features before
 * the record is applied (what it would have scored them with). The trainer
 * replays the same log from the data directory (events.tsv + the
 * partitions the consumer wrote): its rows of those impressions are the
 * same, bit for bit, every column of every row: the item columns (record +
 * counter deltas) and the user columns (record continued with the user's
 * online events, common/user_online.h). Serving scores a whole request with
 * the state before it, and so does the replay (each serve record's rows
 * before its impressions, cascade_dataset_request_end): a request's later
 * rows must not see its earlier items' impressions. */
static void test_served_features_equal_the_trainers_replay(void **state)
{
    cascade_redis *rc = fx(state)->conn;
    char dir[256], models[256];
    struct expect x;
    size_t applied = 0, n_served = 0, changed = 0, user_changed = 0, n_first = 0;
    struct served *sv = calloc(400, sizeof *sv);
    assert_non_null(sv);
    assert_non_null(test_tempdir(dir, sizeof dir));
    assert_non_null(test_tempdir(models, sizeof models));
    write_world(dir, &x);
    assert_int_equal(run_load(state, dir, "par"), CASCADE_BUILD_EXIT_OK);
    cascade_rank *rank = make_rank(state, "par", models, true, NULL);
    cascade_rank *nightly = make_rank(state, "par", models, false, NULL);
    cascade_prerank *pre = make_prerank(state, "par", true, NULL);
    cascade_prerank *pre_nightly = make_prerank(state, "par", false, NULL);
    struct cascade_train_prerank_opts po;
    cascade_train_prerank_defaults(&po);
    cascade_consumer *c = make_consumer("par", dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, rc), 0);
    for (unsigned k = 0; k < 300; k++) {
        int64_t ts = T0 + 600 + 3 * k;
        if (k % 3 == 0) {
            size_t items[3];
            struct served *s = &sv[n_served];
            snprintf(s->user, sizeof s->user, "u%u", 1 + k % N_USERS);
            for (size_t j = 0; j < 3; j++)
                items[j] = FIRST_ITEM + (k / 3 + 3 * j) % N_ITEMS;
            float rows[3 * CASCADE_RANK_FEATURES], base[3 * CASCADE_RANK_FEATURES];
            serve_features(rank, s->user, items, 3, ts, rows);
            serve_features(nightly, s->user, items, 3, ts, base);
            uint32_t pidx[3 * CASCADE_PRERANK_FEATURES], pidx_nightly[3 * CASCADE_PRERANK_FEATURES];
            float heur[3], heur_nightly[3];
            prerank_features(pre, s->user, items, 3, ts, po.bits, pidx, heur);
            prerank_features(pre_nightly, s->user, items, 3, ts, po.bits, pidx_nightly,
                             heur_nightly);
            for (size_t j = 0; j < 3; j++) {
                s = &sv[n_served++];
                snprintf(s->user, sizeof s->user, "u%u", 1 + k % N_USERS);
                s->item = items[j];
                s->ts = ts;
                memcpy(s->x, rows + j * CASCADE_RANK_FEATURES, sizeof s->x);
                memcpy(s->nightly, base + j * CASCADE_RANK_FEATURES, sizeof s->nightly);
                memcpy(s->pre, pidx + j * CASCADE_PRERANK_FEATURES, sizeof s->pre);
                s->heuristic = heur[j];
                s->first = j == 0;
                s->heuristic_nightly = heur_nightly[j];
            }
        }
        add_tail_entry(state, "par", k, ts, &x);
        assert_int_equal(cascade_consumer_step(c, rc, 0, &applied), 0);
        assert_int_equal(applied, 1);
    }
    /* The trainer's replay of the data directory. */
    cascade_dataset *ds = NULL;
    struct cascade_rank_examples ex;
    struct cascade_prerank_examples pex;
    trainers_replay(dir, &po, &ds, &ex, &pex);
    assert_int_equal(ds->partitions, 1);
    size_t pre_changed = 0;
    for (size_t i = 0; i < n_served; i++) {
        long row = trainer_row(ds, &ex, &sv[i]);
        assert_true(row >= 0);
        const float *t = ex.X + (size_t)row * CASCADE_RANK_FEATURES;
        bool differs = false;
        for (size_t col = 0; col < CASCADE_RANK_FEATURES; col++) {
            if (memcmp(&sv[i].x[col], &t[col], sizeof(float)) != 0)
                fail_msg("%s item %llu at %lld: feature %s served %.9g, trainer %.9g", sv[i].user,
                         (unsigned long long)sv[i].item, (long long)sv[i].ts,
                         cascade_features_rank_name(col), (double)sv[i].x[col], (double)t[col]);
            if (item_column(col))
                differs |= memcmp(&sv[i].nightly[col], &t[col], sizeof(float)) != 0;
        }
        changed += differs;
        n_first += sv[i].first;
        user_changed +=
            memcmp(&sv[i].nightly[USER_LOG_ACTIVITY], &t[USER_LOG_ACTIVITY], sizeof(float)) != 0;
        const uint32_t *pt = pex.idx + (size_t)row * CASCADE_PRERANK_FEATURES;
        for (size_t col = 0; col < CASCADE_PRERANK_FEATURES; col++)
            if (sv[i].pre[col] != pt[col])
                fail_msg("%s item %llu at %lld: prerank feature %zu served %u, trainer %u",
                         sv[i].user, (unsigned long long)sv[i].item, (long long)sv[i].ts, col,
                         sv[i].pre[col], pt[col]);
        if (memcmp(&sv[i].heuristic, &pex.heuristic[row], sizeof(float)) != 0)
            fail_msg("%s item %llu at %lld: prerank heuristic served %.9g, trainer %.9g",
                     sv[i].user, (unsigned long long)sv[i].item, (long long)sv[i].ts,
                     (double)sv[i].heuristic, (double)pex.heuristic[row]);
        pre_changed += memcmp(&sv[i].heuristic_nightly, &pex.heuristic[row], sizeof(float)) != 0;
    }
    /* Not vacuous: most rows differ from the nightly statistics alone. */
    print_message("%zu served rows compared; %zu differ from the nightly statistics; the user "
                  "columns of every row compared (%zu first rows), %zu rows differ from the "
                  "nightly user's activity\n",
                  n_served, changed, n_first, user_changed);
    assert_int_equal(n_served, 300);
    assert_int_equal(n_first, 100);
    assert_true(changed > n_served / 2);
    assert_true(user_changed > n_served / 2);
    print_message("prerank: %zu of them differ from the nightly statistics\n", pre_changed);
    assert_true(pre_changed > n_served / 2);
    cascade_prerank_examples_free(&pex);
    cascade_prerank_destroy(pre);
    cascade_prerank_destroy(pre_nightly);
    cascade_rank_examples_free(&ex);
    cascade_dataset_destroy(ds);
    cascade_consumer_destroy(c);
    cascade_rank_destroy(rank);
    cascade_rank_destroy(nightly);
    test_rmdir(models);
    test_rmdir(dir);
    free(sv);
}

/* A user without a record (new since the build, absent from the nightly
 * log): Rank and PreRank continue the replay from an empty state (load's
 * {ns}:loop:user_online_new), so every served row of theirs equals the
 * trainer's row bit for bit, where the replay starts them as a user of the
 * log without a profile; the rows differ from a stage without the online
 * user part once they have acted. */
static void test_new_user_features_equal_the_trainers_replay(void **state)
{
    cascade_redis *rc = fx(state)->conn;
    static const char *const ACTS[] = {"click", "like", "collect", "share"};
    char dir[256], models[256];
    struct expect x;
    size_t applied = 0, n_served = 0, user_changed = 0;
    struct served *sv = calloc(24, sizeof *sv);
    assert_non_null(sv);
    assert_non_null(test_tempdir(dir, sizeof dir));
    assert_non_null(test_tempdir(models, sizeof models));
    write_world(dir, &x);
    assert_int_equal(run_load(state, dir, "nu"), CASCADE_BUILD_EXIT_OK);
    cascade_rank *rank = make_rank(state, "nu", models, true, NULL);
    cascade_rank *nightly = make_rank(state, "nu", models, false, NULL);
    cascade_prerank *pre = make_prerank(state, "nu", true, NULL);
    struct cascade_train_prerank_opts po;
    cascade_train_prerank_defaults(&po);
    cascade_consumer *c = make_consumer("nu", dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, rc), 0);
    for (unsigned k = 0; k < 24; k++) {
        int64_t ts = T0 + 600 + 5 * k;
        size_t items[3];
        for (size_t j = 0; j < 3; j++)
            items[j] = FIRST_ITEM + (k + 3 * j) % N_ITEMS;
        if (k % 3 == 0) {
            float rows[3 * CASCADE_RANK_FEATURES], base[3 * CASCADE_RANK_FEATURES];
            uint32_t pidx[3 * CASCADE_PRERANK_FEATURES];
            float heur[3];
            serve_features(rank, "nu1", items, 3, ts, rows);
            serve_features(nightly, "nu1", items, 3, ts, base);
            prerank_features(pre, "nu1", items, 3, ts, po.bits, pidx, heur);
            for (size_t j = 0; j < 3; j++) {
                struct served *s = &sv[n_served++];
                snprintf(s->user, sizeof s->user, "nu1");
                s->item = items[j];
                s->ts = ts;
                memcpy(s->x, rows + j * CASCADE_RANK_FEATURES, sizeof s->x);
                memcpy(s->nightly, base + j * CASCADE_RANK_FEATURES, sizeof s->nightly);
                memcpy(s->pre, pidx + j * CASCADE_PRERANK_FEATURES, sizeof s->pre);
            }
            add_serve(state, "nu", "nu1", items, 3, ts);
        } else {
            add_event(state, "nu", "nu1", items[0], ACTS[k % 4], 0, ts);
        }
        assert_int_equal(cascade_consumer_step(c, rc, 0, &applied), 0);
        assert_int_equal(applied, 1);
    }
    cascade_dataset *ds = NULL;
    struct cascade_rank_examples ex;
    struct cascade_prerank_examples pex;
    trainers_replay(dir, &po, &ds, &ex, &pex);
    for (size_t i = 0; i < n_served; i++) {
        long row = trainer_row(ds, &ex, &sv[i]);
        assert_true(row >= 0);
        const float *t = ex.X + (size_t)row * CASCADE_RANK_FEATURES;
        for (size_t col = 0; col < CASCADE_RANK_FEATURES; col++)
            if (memcmp(&sv[i].x[col], &t[col], sizeof(float)) != 0)
                fail_msg("nu1 item %llu at %lld: feature %s served %.9g, trainer %.9g",
                         (unsigned long long)sv[i].item, (long long)sv[i].ts,
                         cascade_features_rank_name(col), (double)sv[i].x[col], (double)t[col]);
        const uint32_t *pt = pex.idx + (size_t)row * CASCADE_PRERANK_FEATURES;
        for (size_t col = 0; col < CASCADE_PRERANK_FEATURES; col++)
            if (sv[i].pre[col] != pt[col])
                fail_msg("nu1 item %llu at %lld: prerank feature %zu served %u, trainer %u",
                         (unsigned long long)sv[i].item, (long long)sv[i].ts, col, sv[i].pre[col],
                         pt[col]);
        user_changed +=
            memcmp(&sv[i].nightly[USER_LOG_ACTIVITY], &t[USER_LOG_ACTIVITY], sizeof(float)) != 0;
    }
    /* Not vacuous: the first request has nothing to continue, the later ones
     * see the user's clicks and impressions. */
    print_message("new user: %zu rows compared, %zu differ from the rows without the online "
                  "user part\n",
                  n_served, user_changed);
    assert_int_equal(n_served, 24);
    assert_true(user_changed >= 18);
    cascade_prerank_examples_free(&pex);
    cascade_rank_examples_free(&ex);
    cascade_dataset_destroy(ds);
    cascade_consumer_destroy(c);
    cascade_prerank_destroy(pre);
    cascade_rank_destroy(rank);
    cascade_rank_destroy(nightly);
    test_rmdir(models);
    test_rmdir(dir);
    free(sv);
}

/* cascade_<stage>_online_user_failures_total in m. */
static double user_failures(cascade_metrics *m, const char *stage, const char *Stage)
{
    char name[96], help[160];
    snprintf(name, sizeof name, "cascade_%s_online_user_failures_total", stage);
    snprintf(help, sizeof help,
             "%s requests scored with the nightly user record because the user's online events "
             "could not be read.",
             Stage);
    return cascade_metric_value(
        cascade_metric_get(cascade_metrics_counter(m, name, help, NULL), NULL));
}

/* Counters that cannot be read (here: a key of the wrong type, so the
 * HMGET fails) leave the nightly statistics, are counted, and the request
 * is served. The same for the user's online events (a key of the wrong type;
 * events dropped by the consumer's cap after the snapshot): the nightly user
 * record, counted. */
static void test_unreadable_counters_degrade(void **state)
{
    char dir[256], models[256], key[CASCADE_KEY_MAX], ukey[CASCADE_KEY_MAX], err[512];
    struct expect x;
    redisReply *rep = NULL;
    size_t applied = 0;
    assert_non_null(test_tempdir(dir, sizeof dir));
    assert_non_null(test_tempdir(models, sizeof models));
    write_world(dir, &x);
    assert_int_equal(run_load(state, dir, "deg"), CASCADE_BUILD_EXIT_OK);
    cascade_consumer *c = make_consumer("deg", dir, 100);
    assert_int_equal(cascade_consumer_ensure_groups(c, fx(state)->conn), 0);
    for (unsigned k = 0; k < 30; k++)
        add_tail_entry(state, "deg", k, T0 + 600 + k, &x);
    assert_int_equal(cascade_consumer_step(c, fx(state)->conn, 0, &applied), 0);
    cascade_metrics *m = cascade_metrics_create();
    assert_non_null(m);
    cascade_rank *rank = make_rank(state, "deg", models, true, m);
    cascade_rank *nightly = make_rank(state, "deg", models, false, NULL);
    size_t items[N_ITEMS];
    float on[N_ITEMS * CASCADE_RANK_FEATURES], off[N_ITEMS * CASCADE_RANK_FEATURES];
    for (size_t i = 0; i < N_ITEMS; i++)
        items[i] = FIRST_ITEM + i;
    serve_features(rank, "u1", items, N_ITEMS, T0 + 700, on);
    serve_features(nightly, "u1", items, N_ITEMS, T0 + 700, off);
    assert_true(memcmp(on, off, sizeof on) != 0); /* the counters count */
    cascade_prerank *pre = make_prerank(state, "deg", true, m);
    cascade_prerank *pre_nightly = make_prerank(state, "deg", false, NULL);
    uint32_t pidx[N_ITEMS * CASCADE_PRERANK_FEATURES], pidx_off[N_ITEMS * CASCADE_PRERANK_FEATURES];
    float heur[N_ITEMS], heur_off[N_ITEMS];
    prerank_features(pre, "u1", items, N_ITEMS, T0 + 700, 20, pidx, heur);
    prerank_features(pre_nightly, "u1", items, N_ITEMS, T0 + 700, 20, pidx_off, heur_off);
    assert_true(memcmp(heur, heur_off, sizeof heur) != 0); /* the counters count */
    /* One item's totals malformed: the whole read is refused; the user's
     * events are not a sorted set. */
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "SET %s x",
                                           cascade_key_user_events(ukey, "deg", "u1")),
                     0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "HSET %s %d x",
                                           cascade_key_item_totals(key, "deg"), FIRST_ITEM + 3),
                     0);
    freeReplyObject(rep);
    serve_features(rank, "u1", items, N_ITEMS, T0 + 700, on);
    assert_memory_equal(on, off, sizeof on);
    prerank_features(pre, "u1", items, N_ITEMS, T0 + 700, 20, pidx, heur);
    assert_memory_equal(pidx, pidx_off, sizeof pidx);
    assert_memory_equal(heur, heur_off, sizeof heur);
    /* A totals key of the wrong type: the HMGET fails. */
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "DEL %s", key), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "SET %s x", key), 0);
    freeReplyObject(rep);
    serve_features(rank, "u1", items, N_ITEMS, T0 + 700, on);
    assert_memory_equal(on, off, sizeof on);
    prerank_features(pre, "u1", items, N_ITEMS, T0 + 700, 20, pidx, heur);
    assert_memory_equal(heur, heur_off, sizeof heur);
    cascade_metric_family *f =
        cascade_metrics_counter(m, "cascade_rank_online_counter_failures_total",
                                "Rank requests scored with the nightly item statistics alone "
                                "because the online counters could not be read.",
                                NULL);
    assert_true(cascade_metric_value(cascade_metric_get(f, NULL)) == 2.0);
    /* Score itself answers. */
    cascade_arena *a = cascade_arena_create(1 << 16);
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    user.user_id = "u1";
    Cascade__V1__Candidate cand[N_ITEMS], *cands[N_ITEMS];
    for (size_t i = 0; i < N_ITEMS; i++) {
        cascade__v1__candidate__init(&cand[i]);
        cand[i].item_id = items[i];
        cands[i] = &cand[i];
    }
    Cascade__V1__RankRequest rq = CASCADE__V1__RANK_REQUEST__INIT;
    rq.user = &user;
    rq.candidates = cands;
    rq.n_candidates = N_ITEMS;
    Cascade__V1__RankResponse *rr = NULL;
    assert_int_equal(cascade_rank_run(rank, a, cascade_now_ms() + 10000, &rq, &rr, err, sizeof err),
                     0);
    assert_int_equal(rr->n_candidates, N_ITEMS);
    assert_true(cascade_metric_value(cascade_metric_get(f, NULL)) == 3.0);
    /* PreRank's Score answers too, each failed read counted. */
    cascade_arena_reset(a);
    Cascade__V1__PreRankRequest pq = CASCADE__V1__PRE_RANK_REQUEST__INIT;
    pq.user = &user;
    pq.candidates = cands;
    pq.n_candidates = N_ITEMS;
    Cascade__V1__PreRankResponse *pr = NULL;
    assert_int_equal(
        cascade_prerank_run(pre, a, cascade_now_ms() + 10000, &pq, &pr, err, sizeof err), 0);
    assert_int_equal(pr->n_candidates, N_ITEMS);
    cascade_metric_family *pf =
        cascade_metrics_counter(m, "cascade_prerank_online_counter_failures_total",
                                "PreRank requests scored, wholly or from a chunk on, with the "
                                "nightly item statistics because the online counters could not "
                                "be read.",
                                NULL);
    assert_true(cascade_metric_value(cascade_metric_get(pf, NULL)) == 3.0);
    /* Each Rank request above and each PreRank one that read the user (the
     * feature path; Score without a model reads no user) counted its failed
     * user read. */
    assert_true(user_failures(m, "rank", "Rank") == 3.0);
    assert_true(user_failures(m, "prerank", "PreRank") == 2.0);
    /* The consumer's cap dropped events after the snapshot (its marker
     * scores above the record's base): not exact any more, so nightly. */
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "DEL %s", ukey), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "ZADD %s 1000000000 %s", ukey,
                                           CASCADE_USER_ONLINE_TRIMMED),
                     0);
    freeReplyObject(rep);
    serve_features(rank, "u1", items, N_ITEMS, T0 + 700, on);
    assert_memory_equal(on, off, sizeof on);
    prerank_features(pre, "u1", items, N_ITEMS, T0 + 700, 20, pidx, heur);
    assert_memory_equal(pidx, pidx_off, sizeof pidx);
    assert_true(user_failures(m, "rank", "Rank") == 4.0);
    assert_true(user_failures(m, "prerank", "PreRank") == 3.0);
    /* A record of another load than the base (a load between its two
     * writes): the base is not used. */
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "DEL %s", ukey), 0);
    freeReplyObject(rep);
    cascade_v1_UserRecord u1;
    bool u1_found = false;
    assert_int_equal(cascade_store_get_user(fx(state)->conn, "deg", "u1", &u1, &u1_found), 0);
    assert_true(u1_found);
    u1.online_seq++;
    assert_int_equal(cascade_store_put_user(fx(state)->conn, "deg", &u1), 0);
    serve_features(rank, "u1", items, N_ITEMS, T0 + 700, on);
    assert_memory_equal(on, off, sizeof on);
    assert_true(user_failures(m, "rank", "Rank") == 5.0);
    cascade_prerank_destroy(pre);
    cascade_prerank_destroy(pre_nightly);
    cascade_arena_destroy(a);
    cascade_rank_destroy(rank);
    cascade_rank_destroy(nightly);
    cascade_metrics_destroy(m);
    cascade_consumer_destroy(c);
    test_rmdir(models);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncommitted_batch_at_snapshot),
        cmocka_unit_test(test_first_batch_at_snapshot),
        cmocka_unit_test(test_lost_commits_read_whole),
        cmocka_unit_test(test_as_of_with_counters_refused),
        cmocka_unit_test(test_corrupt_totals_refused_then_rebuilt),
        cmocka_unit_test(test_consumer_running_during_load),
        cmocka_unit_test(test_totals_follow_every_batch),
        cmocka_unit_test(test_served_features_equal_the_trainers_replay),
        cmocka_unit_test(test_new_user_features_equal_the_trainers_replay),
        cmocka_unit_test(test_unreadable_counters_degrade),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
