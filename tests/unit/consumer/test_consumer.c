/* Tests of the stream consumer against a private redis-server: counters of
 * Feedback events and serve records (items: totals and decayed counts; users:
 * totals, interactions, category affinity), exactly once under redelivery,
 * re-claim of a crashed consumer's entries (before and after it applied
 * them), unparseable entries, and the daily partitions (format, one line per
 * event under redelivery, an uncommitted tail dropped). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "consumer.h"
#include "consumer_test.h"
#include "error.h"
#include "metrics.h"
#include "store.h"
#include "support.h"

static struct test_redis_fixture *fx(void **state)
{
    return *state;
}

static cascade_consumer *make(const char *ns, const char *name, int64_t claim_idle_ms,
                              const char *data_dir, cascade_metrics *m)
{
    char err[256];
    struct cascade_consumer_opts o;
    assert_int_equal(cascade_consumer_config(NULL, &o, err, sizeof err), 0);
    o.ns = ns;
    o.name = name;
    o.claim_idle_ms = claim_idle_ms;
    o.data_dir = data_dir;
    cascade_consumer *c = cascade_consumer_create(&o, m, err, sizeof err);
    if (c == NULL)
        fail_msg("consumer: %s", err);
    return c;
}

static void add_event(void **state, const char *ns, const char *user, uint64_t item,
                      const char *type, const char *value, long long ts)
{
    consumer_test_add_event(fx(state)->conn, ns, user, item, type, value, ts);
}

static void add_serve_at(void **state, const char *ns, const char *user, const char *items,
                         const char *ts_ms)
{
    consumer_test_add_serve(fx(state)->conn, ns, user, items, ts_ms);
}

static void add_serve(void **state, const char *ns, const char *user, const char *items)
{
    add_serve_at(state, ns, user, items, "1");
}

static void put_item(void **state, const char *ns, uint64_t id, uint32_t category)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.category = category;
    assert_int_equal(cascade_store_put_item(fx(state)->conn, ns, &rec), 0);
}

/* A hash field as a double; NAN when absent. */
static double hget(void **state, const char *key, const char *field)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx(state)->conn, &rep, "HGET %s %s", key, field), 0);
    double v = rep->type == REDIS_REPLY_STRING ? strtod(rep->str, NULL) : NAN;
    freeReplyObject(rep);
    return v;
}

static double item_ctr(void **state, const char *ns, uint64_t id, const char *field)
{
    char key[CASCADE_KEY_MAX];
    return hget(state, cascade_key_item_counters(key, ns, id), field);
}

static double user_ctr(void **state, const char *ns, const char *user, const char *field)
{
    char key[CASCADE_KEY_MAX];
    return hget(state, cascade_key_user_counters(key, ns, user), field);
}

static long long pending(void **state, const char *ns, bool serves)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(fx(state)->conn, &rep, "XPENDING %s cascade-consumer",
                              serves ? cascade_key_serves(key, ns) : cascade_key_events(key, ns)),
        0);
    long long n = rep->element[0]->integer;
    freeReplyObject(rep);
    return n;
}

/* The batch of the fixture's world: u1 clicks, likes and plays item 7
 * (category 3), reports an impression of item 8, and was served 7, 8, 9. */
static void add_world(void **state, const char *ns)
{
    put_item(state, ns, 7, 3);
    put_item(state, ns, 8, 5);
    long long now = cascade_wall_s();
    add_event(state, ns, "u1", 7, "click", "0", now);
    add_event(state, ns, "u1", 7, "like", "0", now);
    add_event(state, ns, "u1", 7, "play", "30.5", now);
    add_event(state, ns, "u1", 8, "impression", "0", now);
    add_serve(state, ns, "u1", "7:0:r:0.9:1,8:1:r:0.5:0.8,9:2:e:0.1:0");
}

/* What add_world must leave, applied once. */
static void assert_world_once(void **state, const char *ns)
{
    char key[CASCADE_KEY_MAX];
    assert_true(item_ctr(state, ns, 7, "click") == 1);
    assert_true(item_ctr(state, ns, 7, "like") == 1);
    assert_true(item_ctr(state, ns, 7, "play") == 1);
    assert_true(fabs(item_ctr(state, ns, 7, "play_s") - 30.5) < 1e-9);
    assert_true(item_ctr(state, ns, 7, "impression") == 1); /* served */
    assert_true(item_ctr(state, ns, 8, "impression") == 1);
    assert_true(item_ctr(state, ns, 9, "impression") == 1);
    assert_true(item_ctr(state, ns, 8, "imp_client") == 1); /* reported, kept apart */
    assert_true(isnan(item_ctr(state, ns, 9, "click")));
    /* Decayed counts were just written: worth about one event each. */
    assert_true(fabs(item_ctr(state, ns, 7, "click:d") - 1.0) < 1e-3);
    assert_true(fabs(item_ctr(state, ns, 9, "impression:d") - 1.0) < 1e-3);
    assert_true(user_ctr(state, ns, "u1", "click") == 1);
    assert_true(user_ctr(state, ns, "u1", "impression") == 1);
    assert_true(user_ctr(state, ns, "u1", "interactions") == 2); /* click + like */
    assert_true(user_ctr(state, ns, "u1", "requests") == 1);
    assert_true(user_ctr(state, ns, "u1", "served") == 3);
    /* Category 3 affinity: click 1 + like 2. */
    assert_true(fabs(hget(state, cascade_key_user_affinity(key, ns, "u1"), "3:d") - 3.0) < 1e-3);
    assert_true(isnan(hget(state, key, "5:d"))); /* an impression is no interest */
}

static cascade_metric *counter(cascade_metrics *m, const char *name, const char *stream)
{
    const char *label[1] = {stream};
    return cascade_metric_get(cascade_metrics_counter(m, name, "", stream ? "stream" : NULL),
                              stream ? label : NULL);
}

/* One step applies everything once and acknowledges it; the group
 * delivering it all again (XGROUP SETID 0) changes no counter. */
static void test_counters_exactly_once(void **state)
{
    cascade_metrics *m = cascade_metrics_create();
    cascade_redis *r = fx(state)->conn;
    cascade_consumer *c = make("once", "a", 30000, NULL, m);
    size_t applied = 0;
    add_world(state, "once");
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0); /* an existing group is fine */
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 5);
    assert_world_once(state, "once");
    assert_int_equal(pending(state, "once", false), 0);
    assert_int_equal(pending(state, "once", true), 0);
    assert_true(cascade_metric_value(counter(m, "cascade_consumer_applied_total", "events")) == 4);
    assert_true(cascade_metric_value(counter(m, "cascade_consumer_applied_total", "serves")) == 1);

    /* Everything delivered again: nothing applied twice. */
    consumer_test_redeliver(fx(state)->conn, "once:events");
    consumer_test_redeliver(fx(state)->conn, "once:serves");
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 0);
    assert_world_once(state, "once");
    assert_true(cascade_metric_value(counter(m, "cascade_consumer_duplicates_total", "events")) ==
                4);
    assert_true(cascade_metric_value(counter(m, "cascade_consumer_duplicates_total", "serves")) ==
                1);
    /* Nothing new: an empty step. */
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 0);
    cascade_consumer_destroy(c);
    cascade_metrics_destroy(m);
}

/* Two consumers of namespace ns (re-claim after 0 ms), the world added,
 * and a's first fetch: all five entries, none claimed, now pending on a. */
static void two_consumers_a_fetched(void **state, const char *ns, cascade_consumer **a,
                                    cascade_consumer **b)
{
    struct cascade_consumer_fetched f;
    *a = make(ns, "a", 0, NULL, NULL);
    *b = make(ns, "b", 0, NULL, NULL);
    add_world(state, ns);
    assert_int_equal(cascade_consumer_ensure_groups(*a, fx(state)->conn), 0);
    assert_int_equal(cascade_consumer_fetch(*a, fx(state)->conn, 0, &f), 0);
    assert_int_equal(f.events + f.serves, 5);
    assert_int_equal(f.claimed, 0);
    assert_int_equal(pending(state, ns, false), 4);
}

/* Consumer a reads the batch and dies before applying it: b re-claims the
 * pending entries (XAUTOCLAIM) and applies them once. */
static void test_reclaim_before_apply(void **state)
{
    cascade_redis *r = fx(state)->conn;
    cascade_consumer *a, *b;
    struct cascade_consumer_fetched f;
    size_t applied = 0;
    two_consumers_a_fetched(state, "crash1", &a, &b);
    assert_true(isnan(item_ctr(state, "crash1", 7, "click"))); /* a died here */
    assert_int_equal(cascade_consumer_fetch(b, r, 0, &f), 0);
    assert_int_equal(f.claimed, 5);
    size_t dups = 0;
    assert_int_equal(cascade_consumer_apply(b, r, &applied, &dups), 0);
    assert_int_equal(cascade_consumer_ack(b, r), 0);
    assert_int_equal(applied, 5);
    assert_int_equal(dups, 0);
    assert_world_once(state, "crash1");
    assert_int_equal(pending(state, "crash1", false), 0);
    assert_int_equal(pending(state, "crash1", true), 0);
    cascade_consumer_destroy(a);
    cascade_consumer_destroy(b);
}

/* Consumer a applies the batch and dies before XACK: b re-claims it, finds
 * every entry marked and changes nothing. */
static void test_reclaim_after_apply(void **state)
{
    cascade_redis *r = fx(state)->conn;
    cascade_consumer *a, *b;
    size_t applied = 0, dups = 0;
    two_consumers_a_fetched(state, "crash2", &a, &b);
    assert_int_equal(cascade_consumer_apply(a, r, &applied, &dups), 0);
    assert_int_equal(applied, 5);
    assert_int_equal(pending(state, "crash2", false), 4); /* a died before XACK */
    assert_int_equal(cascade_consumer_step(b, r, 0, &applied), 0);
    assert_int_equal(applied, 0);
    assert_world_once(state, "crash2");
    assert_int_equal(pending(state, "crash2", false), 0);
    cascade_consumer_destroy(a);
    cascade_consumer_destroy(b);
}

/* Entries that cannot be parsed are counted, acknowledged and skipped; the
 * good ones in the same batch are applied. */
static void test_bad_entries(void **state)
{
    cascade_metrics *m = cascade_metrics_create();
    cascade_redis *r = fx(state)->conn;
    cascade_consumer *c = make("bad", "a", 30000, NULL, m);
    size_t applied = 0;
    long long now = cascade_wall_s();
    add_event(state, "bad", "u1", 7, "clack", "0", now); /* unknown type */
    add_event(state, "bad", "u1", 0, "click", "0", now); /* item 0 */
    add_serve(state, "bad", "u1", "x:0:r:1:1");          /* not an item list */
    add_event(state, "bad", "u1", 7, "click", "0", now);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 1);
    assert_true(item_ctr(state, "bad", 7, "click") == 1);
    assert_true(cascade_metric_value(counter(m, "cascade_consumer_bad_entries_total", NULL)) == 3);
    assert_int_equal(pending(state, "bad", false), 0);
    assert_int_equal(pending(state, "bad", true), 0);
    cascade_consumer_destroy(c);
    cascade_metrics_destroy(m);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Events go to the partition of their UTC day in the events.tsv format; a
 * serve record's items go there as impression lines at its served second,
 * before the batch's events; client-reported impressions go to their own
 * partitions (never read as the log's impressions); a redelivered batch
 * adds no line; a tail written but never committed (a crash in the middle
 * of a write) is dropped before the next append. */
static void test_partitions(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], path[512], key[CASCADE_KEY_MAX];
    assert_non_null(test_tempdir(dir, sizeof dir));
    cascade_consumer *c = make("part", "a", 30000, dir, NULL);
    size_t applied = 0;
    /* 2026-12-05 23:59:59 and 2026-12-06 00:00:00 UTC. */
    add_event(state, "part", "u1", 7, "click", "0", 1796515199LL);
    add_event(state, "part", "u2", 8, "play", "12.5", 1796515200LL);
    add_event(state, "part", "u2", 9, "impression", "0", 1796515200LL);
    add_serve_at(state, "part", "u1", "7:0:r:1:1,5:1:e:0:0", "1796515199500");
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 4);
    snprintf(path, sizeof path, "%s/events/2026-12-05.tsv", dir);
    assert_string_equal(slurp(path), "1796515199\tu1\t7\timpression\t0\n"
                                     "1796515199\tu1\t5\timpression\t0\n"
                                     "1796515199\tu1\t7\tclick\t0\n");
    snprintf(path, sizeof path, "%s/client-impressions/2026-12-06.tsv", dir);
    assert_string_equal(slurp(path), "1796515200\tu2\t9\timpression\t0\n");
    assert_true(hget(state, cascade_key_loop_partitions(key, "part"),
                     "client-impressions/2026-12-06") == 29.0);
    snprintf(path, sizeof path, "%s/events/2026-12-06.tsv", dir);
    assert_string_equal(slurp(path), "1796515200\tu2\t8\tplay\t12.5\n");
    assert_true(hget(state, cascade_key_loop_partitions(key, "part"), "2026-12-06") == 26.0);

    /* Redelivery: no line twice. */
    consumer_test_redeliver(fx(state)->conn, "part:events");
    consumer_test_redeliver(fx(state)->conn, "part:serves");
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 0);
    assert_string_equal(slurp(path), "1796515200\tu2\t8\tplay\t12.5\n");
    snprintf(path, sizeof path, "%s/events/2026-12-05.tsv", dir);
    assert_string_equal(slurp(path), "1796515199\tu1\t7\timpression\t0\n"
                                     "1796515199\tu1\t5\timpression\t0\n"
                                     "1796515199\tu1\t7\tclick\t0\n");
    snprintf(path, sizeof path, "%s/events/2026-12-06.tsv", dir);

    /* A crash left half a line behind: cut before the next batch. */
    FILE *f = fopen(path, "ab");
    fputs("1796515201\tu3\t9\tcli", f);
    fclose(f);
    add_event(state, "part", "u3", 9, "click", "0", 1796515202LL);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 1);
    assert_string_equal(slurp(path),
                        "1796515200\tu2\t8\tplay\t12.5\n1796515202\tu3\t9\tclick\t0\n");
    /* A value past the build's bound (written straight to the stream; the
     * orchestrator caps Feedback lower) is clamped, so the line stays one the
     * nightly build reads. */
    add_event(state, "part", "u3", 9, "play", "5e12", 1796515203LL);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 1);
    assert_string_equal(slurp(path), "1796515200\tu2\t8\tplay\t12.5\n1796515202\tu3\t9\tclick\t0\n"
                                     "1796515203\tu3\t9\tplay\t1e+09\n");
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* The first batch of a new partition written but not committed (here: the
 * batch's second partition cannot be written, so the batch fails after the
 * first was appended) is cut when the batch is delivered again: the
 * partition's starting length was committed before its first write, so
 * its lines are in it once. */
static void test_first_batch_not_committed(void **state)
{
    cascade_redis *r = fx(state)->conn;
    char dir[256], path[512], key[CASCADE_KEY_MAX];
    assert_non_null(test_tempdir(dir, sizeof dir));
    cascade_consumer *c = make("first", "a", 0, dir, NULL); /* re-claims at once */
    size_t applied = 0;
    /* 2026-12-06 and 2026-12-07 UTC; the second day's file is a directory. */
    add_event(state, "first", "u1", 7, "click", "0", 1796515200LL);
    add_event(state, "first", "u1", 8, "click", "0", 1796601600LL);
    snprintf(path, sizeof path, "%s/events", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/events/2026-12-07.tsv", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(cascade_consumer_ensure_groups(c, r), 0);
    assert_int_not_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    snprintf(path, sizeof path, "%s/events/2026-12-06.tsv", dir);
    assert_string_equal(slurp(path), "1796515200\tu1\t7\tclick\t0\n"); /* written */
    assert_true(hget(state, cascade_key_loop_partitions(key, "first"), "2026-12-06") == 0.0);
    snprintf(path, sizeof path, "%s/events/2026-12-07.tsv", dir);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(cascade_consumer_step(c, r, 0, &applied), 0);
    assert_int_equal(applied, 2);
    snprintf(path, sizeof path, "%s/events/2026-12-06.tsv", dir);
    assert_string_equal(slurp(path), "1796515200\tu1\t7\tclick\t0\n");
    snprintf(path, sizeof path, "%s/events/2026-12-07.tsv", dir);
    assert_string_equal(slurp(path), "1796601600\tu1\t8\tclick\t0\n");
    cascade_consumer_destroy(c);
    test_rmdir(dir);
}

/* v · 2^(−Δt / half-life). */
static void test_decay(void **state)
{
    (void)state;
    assert_true(fabs(cascade_consumer_decay(8.0, 100.0, 100.0 + 2 * 3600.0, 3600.0) - 2.0) < 1e-12);
    assert_true(cascade_consumer_decay(8.0, 100.0, 50.0, 3600.0) == 8.0);
}

/* Bad options are refused with a message. */
static void test_options(void **state)
{
    (void)state;
    char err[256];
    struct cascade_consumer_opts o;
    assert_int_equal(cascade_consumer_config(NULL, &o, err, sizeof err), 0);
    o.ns = "x";
    o.name = "has space";
    assert_null(cascade_consumer_create(&o, NULL, err, sizeof err));
    assert_non_null(strstr(err, "printable"));
    cascade_config *cfg =
        cascade_config_parse("{\"consumer\": {\"batch\": 0}}", "t.json", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cascade_consumer_config(cfg, &o, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "consumer.batch"));
    cascade_config_destroy(cfg);
    cascade_consumer_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_exactly_once),
        cmocka_unit_test(test_reclaim_before_apply),
        cmocka_unit_test(test_reclaim_after_apply),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_first_batch_not_committed),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, test_redis_group_setup, test_redis_group_teardown);
}
