/* Tests of the Filter stage library against a private redis-server: recorded
 * exposures never pass (zero false negatives) and the measured false-positive
 * rate at the sized capacity stays near the target, window rotation on the
 * server's clock (a client's time picks no window), reservations (eight
 * concurrent Filter + reserve callers for one user get disjoint answers),
 * consumed, blocked-item, blocked-author and duplicate drops with per-reason
 * counts (in the response and in the metrics registry), item records read
 * only for users with blocked authors, user isolation, validation, Redis
 * failures, and both RPC handlers through a real in-process gRPC server. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "filter.h"
#include "metrics.h"
#include "rpc.h"
#include "store.h"
#include "messages.h"
#include "support.h"

#define NS "t"
#define DAY 86400
#define T0 ((int64_t)1750000000) /* request time used throughout */

struct fixture {
    struct test_redis_fixture redis;
    cascade_metrics *metrics;
    cascade_filter *filter;
    cascade_arena *arena;
};

static cascade_filter *make_filter_with(cascade_redis_pool *pool, const char *json,
                                        cascade_metrics *metrics)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_filter *f = cascade_filter_create(cfg, pool, NS, metrics, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!f)
        fail_msg("cascade_filter_create: %s", err);
    return f;
}

static cascade_filter *make_filter(cascade_redis_pool *pool, const char *json)
{
    return make_filter_with(pool, json, NULL);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    f.metrics = cascade_metrics_create();
    f.filter = make_filter_with(f.redis.pool, "{}", f.metrics);
    f.arena = cascade_arena_create(0);
    return f.metrics && f.arena ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    cascade_filter_destroy(f->filter);
    cascade_metrics_destroy(f->metrics);
    test_redis_fixture_stop(&f->redis);
    return 0;
}

static Cascade__V1__FilterRequest *filter_request(cascade_arena *a, const char *uid,
                                                  const uint64_t *ids, size_t n)
{
    Cascade__V1__FilterRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__filter_request__init(req);
    req->user = test_user_context(a, uid, T0);
    req->n_candidates = n;
    req->candidates = test_candidates(a, ids, n);
    return req;
}

static Cascade__V1__RecordExposureRequest *
record_request(cascade_arena *a, const char *uid, const uint64_t *ids, size_t n, int64_t time_s)
{
    Cascade__V1__RecordExposureRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__record_exposure_request__init(req);
    req->user_id = cascade_arena_strdup(a, uid);
    req->n_item_ids = n;
    req->item_ids = cascade_arena_calloc(a, n + 1, sizeof *req->item_ids);
    memcpy(req->item_ids, ids, n * sizeof *ids);
    req->time_s = time_s;
    return req;
}

static void record(struct fixture *f, const char *uid, const uint64_t *ids, size_t n,
                   int64_t time_s)
{
    char err[256] = "";
    Cascade__V1__RecordExposureResponse *resp = NULL;
    int rc = cascade_filter_record(f->filter, f->arena, INT64_MAX,
                                   record_request(f->arena, uid, ids, n, time_s), &resp, err,
                                   sizeof err);
    if (rc != 0)
        fail_msg("record: %s", err);
    assert_int_equal(resp->recorded, n);
}

static Cascade__V1__FilterResponse *filter(struct fixture *f, const char *uid, const uint64_t *ids,
                                           size_t n)
{
    char err[256] = "";
    Cascade__V1__FilterResponse *resp = NULL;
    int rc = cascade_filter_run(f->filter, f->arena, INT64_MAX,
                                filter_request(f->arena, uid, ids, n), &resp, err, sizeof err);
    if (rc != 0)
        fail_msg("filter: %s", err);
    return resp;
}

static uint32_t dropped(const Cascade__V1__FilterResponse *resp, const char *reason)
{
    for (size_t i = 0; i < resp->n_dropped; i++)
        if (strcmp(resp->dropped[i]->reason, reason) == 0)
            return resp->dropped[i]->count;
    fail_msg("no drop count for reason \"%s\"", reason);
    return 0;
}

static void test_no_false_negatives(void **state)
{
    struct fixture *f = *state;
    uint64_t ids[500];
    for (size_t i = 0; i < 500; i++)
        ids[i] = 1000003ULL * (i + 1); /* spread-out ids */
    /* Two calls (the proto caps one call at 1000 items; this also covers appending). */
    record(f, "alice", ids, 250, T0);
    record(f, "alice", ids + 250, 250, T0 - 5);

    Cascade__V1__FilterResponse *resp = filter(f, "alice", ids, 500);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(dropped(resp, "exposed"), 500);
    assert_int_equal(dropped(resp, "consumed"), 0);
    assert_int_equal(dropped(resp, "duplicate"), 0);

    /* Another user is unaffected. */
    resp = filter(f, "bob", ids, 500);
    assert_int_equal(resp->n_candidates, 500);
    assert_int_equal(dropped(resp, "exposed"), 0);

    /* Items never shown mostly pass: 500 entries in a filter sized for 5000 at
     * 0.1% leave a false-positive rate far below 1%. */
    uint64_t fresh[1000];
    for (size_t i = 0; i < 1000; i++)
        fresh[i] = 7 + 2 * i;
    resp = filter(f, "alice", fresh, 1000);
    assert_true(resp->n_candidates >= 990);
}

/* The server clock the rotation test moves (cascade_filter_set_clock). */
static int64_t test_clock_s;

static int64_t test_clock(void)
{
    return test_clock_s;
}

static void test_windows_rotate(void **state)
{
    struct fixture *f = *state;
    const uint64_t recent = 42, old = 43;
    cascade_filter_set_clock(f->filter, test_clock);
    test_clock_s = T0 - 31 * DAY; /* 32nd window back: fallen out by T0 */
    record(f, "carol", &old, 1, 0);
    test_clock_s = T0 - 29 * DAY; /* 30th window back: still checked at T0 */
    record(f, "carol", &recent, 1, 0);
    /* Back then (on the server's clock), both are seen. */
    Cascade__V1__FilterResponse *resp = filter(f, "carol", (const uint64_t[]){recent, old}, 2);
    assert_int_equal(resp->n_candidates, 0);
    test_clock_s = T0;
    resp = filter(f, "carol", (const uint64_t[]){recent, old}, 2);
    assert_int_equal(resp->n_candidates, 1);
    assert_int_equal(resp->candidates[0]->item_id, old);
    assert_int_equal(dropped(resp, "exposed"), 1);

    /* The current window's key expires after windows × window_seconds. */
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    record(f, "carol", &recent, 1, 0);
    cascade_key_exposure(key, NS, "carol", cascade_filter_window(T0, DAY));
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "TTL %s", key), 0);
    assert_true(rep->integer > 29 * DAY && rep->integer <= 30 * DAY);
    freeReplyObject(rep);
    cascade_filter_set_clock(f->filter, NULL);
}

/* A client's clock picks no window: items shown now are dropped whatever
 * request_time_s says, and a RecordExposure dated long ago still lands in a
 * window the Filter checks. */
static void test_client_time_picks_no_window(void **state)
{
    struct fixture *f = *state;
    const uint64_t shown[] = {61, 62, 63, 64, 65};
    const uint64_t backdated[] = {71, 72};
    const int64_t now = cascade_wall_s();
    record(f, "frank", shown, 5, 0);
    record(f, "frank", backdated, 2, now - 400LL * DAY);
    const int64_t shifts[] = {0, 1, now + 31 * DAY, now - 31 * DAY, now + 3650LL * DAY};
    for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++) {
        Cascade__V1__FilterRequest *req =
            filter_request(f->arena, "frank", (const uint64_t[]){61, 62, 63, 64, 65, 71, 72}, 7);
        req->user->request_time_s = shifts[s];
        Cascade__V1__FilterResponse *resp = NULL;
        char err[256] = "";
        assert_int_equal(
            cascade_filter_run(f->filter, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
        if (resp->n_candidates != 0)
            fail_msg("request_time_s %lld brought back %zu shown items (first %llu)",
                     (long long)shifts[s], resp->n_candidates,
                     (unsigned long long)resp->candidates[0]->item_id);
        assert_int_equal(dropped(resp, "exposed"), 7);
    }
}

/* RecordExposure with reserve over ids[0..n): the items taken. */
static Cascade__V1__RecordExposureResponse *reserve(cascade_filter *flt, cascade_arena *a,
                                                    const char *uid, const uint64_t *ids, size_t n,
                                                    uint32_t want, char *err, size_t errlen)
{
    Cascade__V1__RecordExposureRequest *req = record_request(a, uid, ids, n, 0);
    Cascade__V1__RecordExposureResponse *resp = NULL;
    req->reserve = want;
    if (cascade_filter_record(flt, a, INT64_MAX, req, &resp, err, errlen) != 0)
        return NULL;
    return resp;
}

static void test_reserve_takes_first_unexposed(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    record(f, "gina", (const uint64_t[]){2, 4}, 2, 0);
    /* 2 and 4 are taken already, the second 3 is this call's own repeat. */
    Cascade__V1__RecordExposureResponse *r =
        reserve(f->filter, f->arena, "gina", (const uint64_t[]){1, 2, 3, 3, 4, 5, 6, 7}, 8, 4, err,
                sizeof err);
    if (!r)
        fail_msg("reserve: %s", err);
    const uint64_t want[] = {1, 3, 5, 6};
    assert_int_equal(r->recorded, 4);
    assert_int_equal(r->n_item_ids, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(r->item_ids[i], want[i]);
    /* What was reserved is exposed; 7, offered but not taken, is not. */
    Cascade__V1__FilterResponse *resp = filter(f, "gina", (const uint64_t[]){1, 3, 5, 6, 7}, 5);
    assert_int_equal(resp->n_candidates, 1);
    assert_int_equal(resp->candidates[0]->item_id, 7);
    /* Everything offered taken: an empty reservation, not an error. */
    r = reserve(f->filter, f->arena, "gina", (const uint64_t[]){1, 2, 3}, 3, 2, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->recorded, 0);
    assert_int_equal(r->n_item_ids, 0);
}

/* A command of the reservation refused by Redis (here SET under maxmemory,
 * refused while queued, so EXEC aborts too) fails that call with Redis's
 * message, and every reply of it is read: the thread's pooled connection
 * answers the next command, and the next reservation succeeds. */
static void test_reserve_error_keeps_connection_in_step(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    redisReply *rep = NULL;
    const uint64_t ids[] = {101, 102, 103};
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "CONFIG SET maxmemory 1"), 0);
    freeReplyObject(rep);
    Cascade__V1__RecordExposureResponse *r =
        reserve(f->filter, f->arena, "oomuser", ids, 3, 2, err, sizeof err);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "CONFIG SET maxmemory 0"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    assert_null(r);
    assert_non_null(strstr(err, "OOM"));
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "PING"), 0);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    r = reserve(f->filter, f->arena, "oomuser", ids, 3, 2, err, sizeof err);
    if (!r)
        fail_msg("reserve after the refused one: %s", err);
    assert_int_equal(r->n_item_ids, 2);
}

/* The current window's key holding another type is refused as SETBIT
 * refuses it, and left as it was (never overwritten by the bitmap). */
static void test_reserve_refuses_wrong_type(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    record(f, "wtuser", (const uint64_t[]){7}, 1, 0);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "KEYS *wtuser*"), 0);
    assert_int_equal(rep->elements, 1); /* the current window, just written */
    snprintf(key, sizeof key, "%s", rep->element[0]->str);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "DEL %s", key), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "HSET %s kept data", key), 0);
    freeReplyObject(rep);
    Cascade__V1__RecordExposureResponse *r = reserve(
        f->filter, f->arena, "wtuser", (const uint64_t[]){101, 102, 103}, 3, 2, err, sizeof err);
    assert_null(r);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "HGET %s kept", key), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "data");
    freeReplyObject(rep);
}

/* The reservation as the per-bit commands make it, on user `uid`'s keys:
 * EXISTS picks the older windows that hold something; an item is seen when
 * some window (the current one always) has GETBIT 1 at each of its
 * positions; an unseen item is taken and SETBIT at each position in the
 * current window, until `want` are taken; EXPIRE ttl once something was.
 * Returns how many were taken, their indices in taken[]. */
static size_t reserve_by_commands(cascade_redis *c, const struct cascade_bloom_params *p,
                                  const char *uid, int64_t window, int windows, long long ttl,
                                  const uint64_t *ids, size_t n, uint32_t want, size_t *taken)
{
    char keys[8][CASCADE_KEY_MAX];
    bool live[8];
    uint64_t pos[64];
    size_t n_taken = 0;
    redisReply *rep = NULL;
    assert_true(windows <= 8);
    for (int w = 0; w < windows; w++) {
        cascade_key_exposure(keys[w], NS, uid, window - w);
        assert_int_equal(cascade_redis_command(c, &rep, "EXISTS %s", keys[w]), 0);
        live[w] = w == 0 || rep->integer == 1;
        freeReplyObject(rep);
    }
    for (size_t i = 0; i < n && n_taken < want; i++) {
        bool seen = false;
        cascade_bloom_positions(p, ids[i], pos);
        for (int w = 0; w < windows && !seen; w++) {
            bool all = live[w];
            for (uint32_t h = 0; h < p->hashes && all; h++) {
                assert_int_equal(cascade_redis_command(c, &rep, "GETBIT %s %llu", keys[w],
                                                       (unsigned long long)pos[h]),
                                 0);
                all = rep->integer == 1;
                freeReplyObject(rep);
            }
            seen = all;
        }
        if (seen)
            continue;
        for (uint32_t h = 0; h < p->hashes; h++) {
            assert_int_equal(cascade_redis_command(c, &rep, "SETBIT %s %llu 1", keys[0],
                                                   (unsigned long long)pos[h]),
                             0);
            freeReplyObject(rep);
        }
        taken[n_taken++] = i;
    }
    if (n_taken > 0) {
        assert_int_equal(cascade_redis_command(c, &rep, "EXPIRE %s %lld", keys[0], ttl), 0);
        freeReplyObject(rep);
    }
    return n_taken;
}

static void twin_command(cascade_redis *c, const char *fmt, const char *key_a, const char *key_b,
                         const void *arg, size_t len)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(c, &rep, fmt, key_a, arg, len), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(c, &rep, fmt, key_b, arg, len), 0);
    freeReplyObject(rep);
}

/* The reservation (WATCH, MGET, MULTI/SET/EXEC) against the per-bit commands
 * on twin keys: 400 rounds, each from the same random state for two users —
 * older windows absent, empty, short or full, with random bits; the current
 * window absent, short or longer than the filter, with or without a TTL —
 * and the same random offer (ids from a small range, so repeats and Bloom
 * collisions are common) and count. The same items are taken, and every
 * window of the two users is byte for byte the same afterwards, with the same
 * TTL. A small filter (4 windows of ~100 bits) makes every case frequent. */
static void test_reserve_matches_commands(void **state)
{
    struct fixture *f = *state;
    cascade_filter *flt =
        make_filter(f->redis.pool, "{\"filter\":{\"exposure\":{\"windows\":4,\"expected_items\":16,"
                                   "\"fp_rate\":0.05}}}");
    const int windows = 4;
    const long long ttl = 4LL * DAY;
    struct cascade_bloom_params p = cascade_filter_bloom_params(flt);
    cascade_redis *c = f->redis.conn;
    char err[256] = "";
    unsigned seed = 20261207;
    test_clock_s = T0;
    cascade_filter_set_clock(flt, test_clock);
    int64_t window = cascade_filter_window(T0, DAY);
    size_t rounds_taking = 0, rounds_seen = 0;
    for (int round = 0; round < 400; round++) {
        char a[CASCADE_KEY_MAX], b[CASCADE_KEY_MAX];
        uint8_t bytes[64];
        redisReply *rep = NULL;
        for (int w = 0; w < windows; w++) {
            cascade_key_exposure(a, NS, "twin-a", window - w);
            cascade_key_exposure(b, NS, "twin-b", window - w);
            twin_command(c, "DEL %s", a, b, NULL, 0);
            int shape = rand_r(&seed) % 4; /* 0 absent, 1 empty, 2 short, 3 full or longer */
            size_t len = shape == 1   ? 0
                         : shape == 2 ? (size_t)(rand_r(&seed) % ((p.bits + 7) / 8))
                                      : (p.bits + 7) / 8 + (size_t)(rand_r(&seed) % 3);
            int density = rand_r(&seed) % 4; /* of 4: how many bits are set */
            for (size_t i = 0; i < len && i < sizeof bytes; i++) {
                bytes[i] = 0;
                for (int bit = 0; bit < 8; bit++)
                    if (rand_r(&seed) % 4 < density)
                        bytes[i] |= (uint8_t)(1u << bit);
            }
            if (shape != 0)
                twin_command(c, "SET %s %b", a, b, bytes, len);
            if (shape != 0 && w == 0 && rand_r(&seed) % 2)
                twin_command(c, "EXPIRE %s 1000", a, b, NULL, 0);
        }
        uint64_t ids[24];
        size_t n = 1 + (size_t)(rand_r(&seed) % 24), want_taken[24];
        for (size_t i = 0; i < n; i++)
            ids[i] = (uint64_t)(rand_r(&seed) % 40);
        uint32_t want = 1 + (uint32_t)(rand_r(&seed) % n);
        size_t n_want =
            reserve_by_commands(c, &p, "twin-b", window, windows, ttl, ids, n, want, want_taken);
        Cascade__V1__RecordExposureResponse *r =
            reserve(flt, f->arena, "twin-a", ids, n, want, err, sizeof err);
        if (!r)
            fail_msg("round %d: reserve: %s", round, err);
        assert_int_equal(r->n_item_ids, n_want);
        for (size_t j = 0; j < n_want; j++)
            assert_int_equal(r->item_ids[j], ids[want_taken[j]]);
        rounds_taking += n_want > 0;
        rounds_seen += n_want < want;
        for (int w = 0; w < windows; w++) {
            redisReply *ra = NULL, *rb = NULL;
            cascade_key_exposure(a, NS, "twin-a", window - w);
            cascade_key_exposure(b, NS, "twin-b", window - w);
            assert_int_equal(cascade_redis_command(c, &ra, "GET %s", a), 0);
            assert_int_equal(cascade_redis_command(c, &rb, "GET %s", b), 0);
            assert_int_equal(ra->type, rb->type);
            if (ra->type == REDIS_REPLY_STRING) {
                assert_int_equal(ra->len, rb->len);
                assert_memory_equal(ra->str, rb->str, ra->len);
            }
            freeReplyObject(ra);
            freeReplyObject(rb);
            long long ttl_a, ttl_b;
            assert_int_equal(cascade_redis_command(c, &rep, "TTL %s", a), 0);
            ttl_a = rep->integer;
            freeReplyObject(rep);
            assert_int_equal(cascade_redis_command(c, &rep, "TTL %s", b), 0);
            ttl_b = rep->integer;
            freeReplyObject(rep);
            if (ttl_a < 0 || ttl_b < 0)
                assert_int_equal(ttl_a, ttl_b);
            else
                assert_true(ttl_a - ttl_b <= 1 && ttl_b - ttl_a <= 1);
        }
        cascade_arena_reset(f->arena);
    }
    /* Both outcomes were exercised many times (399 and 90 rounds of 400). */
    assert_true(rounds_taking > 100);
    assert_true(rounds_seen > 50);
    cascade_filter_destroy(flt);
}

#define RACERS 8
#define RACE_CANDIDATES 200
#define RACE_COUNT 20

struct racer {
    cascade_filter *filter;
    pthread_barrier_t *start;
    uint64_t got[RACE_COUNT];
    size_t n_got;
    char err[256];
};

/* One Recommend's filter-then-exposure path: Filter the same candidates as
 * every other racer, then reserve RACE_COUNT of the survivors. */
static void *race(void *arg)
{
    struct racer *r = arg;
    cascade_arena *a = cascade_arena_create(0);
    uint64_t ids[RACE_CANDIDATES];
    for (size_t i = 0; i < RACE_CANDIDATES; i++)
        ids[i] = 1000 + i;
    pthread_barrier_wait(r->start);
    Cascade__V1__FilterResponse *fr = NULL;
    if (cascade_filter_run(r->filter, a, INT64_MAX, filter_request(a, "hank", ids, RACE_CANDIDATES),
                           &fr, r->err, sizeof r->err) != 0)
        goto out;
    uint64_t kept[RACE_CANDIDATES];
    for (size_t i = 0; i < fr->n_candidates; i++)
        kept[i] = fr->candidates[i]->item_id;
    Cascade__V1__RecordExposureResponse *rr =
        reserve(r->filter, a, "hank", kept, fr->n_candidates, RACE_COUNT, r->err, sizeof r->err);
    if (rr == NULL)
        goto out;
    for (size_t i = 0; i < rr->n_item_ids && r->n_got < RACE_COUNT; i++)
        r->got[r->n_got++] = rr->item_ids[i];
    if (rr->n_item_ids > RACE_COUNT)
        snprintf(r->err, sizeof r->err, "%zu items reserved, %d asked", rr->n_item_ids, RACE_COUNT);
out:
    cascade_arena_destroy(a);
    return NULL;
}

static void test_concurrent_reservations_disjoint(void **state)
{
    struct fixture *f = *state;
    pthread_barrier_t start;
    pthread_t th[RACERS];
    static struct racer racers[RACERS];
    assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (struct racer){.filter = f->filter, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    size_t total = 0;
    for (int i = 0; i < RACERS; i++) {
        total += racers[i].n_got;
        for (int j = 0; j < i; j++)
            for (size_t a = 0; a < racers[i].n_got; a++)
                for (size_t b = 0; b < racers[j].n_got; b++)
                    if (racers[i].got[a] == racers[j].got[b])
                        fail_msg("item %llu is in answers %d and %d",
                                 (unsigned long long)racers[i].got[a], j, i);
    }
    for (int i = 0; i < RACERS; i++) {
        if (racers[i].err[0])
            fail_msg("racer %d: %s", i, racers[i].err);
        /* 8 × 20 of 200 candidates: every answer fills up. */
        assert_int_equal(racers[i].n_got, RACE_COUNT);
    }
    assert_int_equal(total, RACERS * RACE_COUNT);
}

static void test_reasons_and_order(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    record(f, "dave", (const uint64_t[]){11}, 1, T0);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "SADD %s 12 99",
                                           cascade_key_user_consumed(key, NS, "dave")),
                     0);
    freeReplyObject(rep);
    /* 11 exposed, 12 consumed, 13 kept, 13 again a duplicate, 14 kept, 11 again:
     * a duplicate (repeats are counted as duplicates before anything else). */
    const uint64_t ids[] = {13, 11, 12, 13, 14, 11};
    Cascade__V1__FilterResponse *resp = filter(f, "dave", ids, 6);
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 13);
    assert_int_equal(resp->candidates[1]->item_id, 14);
    assert_int_equal(dropped(resp, "exposed"), 1);
    assert_int_equal(dropped(resp, "consumed"), 1);
    assert_int_equal(dropped(resp, "duplicate"), 2);
    assert_int_equal(dropped(resp, "blocked_item"), 0);
    assert_int_equal(dropped(resp, "blocked_author"), 0);
    /* Every reason is listed, in the documented order. */
    assert_int_equal(resp->n_dropped, 5);
    const char *order[] = {"exposed", "consumed", "blocked_item", "blocked_author", "duplicate"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(resp->dropped[i]->reason, order[i]);

    /* ids_only: the same survivors, as kept_ids and no candidates, and the
     * same counts. */
    char err[256] = "";
    Cascade__V1__FilterRequest *req = filter_request(f->arena, "dave", ids, 6);
    req->ids_only = true;
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(resp->n_kept_ids, 2);
    assert_int_equal(resp->kept_ids[0], 13);
    assert_int_equal(resp->kept_ids[1], 14);
    assert_int_equal(dropped(resp, "duplicate"), 2);
    assert_int_equal(dropped(resp, "exposed"), 1);

    /* An empty candidate list is fine. */
    resp = filter(f, "dave", NULL, 0);
    assert_int_equal(resp->n_candidates, 0);
}

static void sadd(struct fixture *f, const char *key, const char *members)
{
    redisReply *rep = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "SADD %s %s", key, members);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, cmd), 0);
    freeReplyObject(rep);
}

static void put_item(struct fixture *f, uint64_t id, uint64_t author)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.author_id = author;
    rec.category = 1;
    assert_int_equal(cascade_store_put_item(f->redis.conn, NS, &rec), 0);
}

static double drop_metric(struct fixture *f, const char *reason)
{
    cascade_metric_family *fam =
        cascade_metrics_counter(f->metrics, "cascade_filter_dropped_total",
                                "Candidates the filter dropped, by reason", "reason");
    return cascade_metric_value(cascade_metric_get(fam, (const char *const[]){reason}));
}

/* A user who blocked item `blocked`, authors 7 and 9, and consumed
 * `consumed`; items[0..3) get records by authors 7, 8 and 9. */
static void seed_blocking_user(struct fixture *f, const char *uid, const char *blocked,
                               const char *consumed, const uint64_t items[3])
{
    char key[CASCADE_KEY_MAX];
    sadd(f, cascade_key_user_blocked_items(key, NS, uid), blocked);
    sadd(f, cascade_key_user_blocked_authors(key, NS, uid), "7 9");
    sadd(f, cascade_key_user_consumed(key, NS, uid), consumed);
    for (int i = 0; i < 3; i++)
        put_item(f, items[i], (uint64_t)(7 + i));
}

/* Blocked items and blocked authors (author from the item record, or from the
 * candidate's attrs when it has them), counted per reason in the response and
 * in cascade_filter_dropped_total. */
static void test_blocked_items_and_authors(void **state)
{
    struct fixture *f = *state;
    double before_item = drop_metric(f, "blocked_item");
    double before_author = drop_metric(f, "blocked_author");
    /* 21 blocked itself; 22 by author 7 (record); 23 by author 8 is fine; 24
     * has no record but attrs naming author 7; 25 has neither (kept); 26 is
     * by author 9, also blocked, and consumed (counted once, as consumed). */
    seed_blocking_user(f, "gina", "21", "26", (const uint64_t[]){22, 23, 26});
    const uint64_t ids[] = {21, 22, 23, 24, 25, 26};
    Cascade__V1__FilterRequest *req = filter_request(f->arena, "gina", ids, 6);
    Cascade__V1__ItemAttributes attrs = CASCADE__V1__ITEM_ATTRIBUTES__INIT;
    attrs.author_id = 7;
    req->candidates[3]->attrs = &attrs;
    char err[256] = "";
    Cascade__V1__FilterResponse *resp = NULL;
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, req, &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 23);
    assert_int_equal(resp->candidates[1]->item_id, 25);
    assert_int_equal(dropped(resp, "blocked_item"), 1);
    assert_int_equal(dropped(resp, "blocked_author"), 2);
    assert_int_equal(dropped(resp, "consumed"), 1);
    assert_int_equal(dropped(resp, "exposed"), 0);
    assert_float_equal(drop_metric(f, "blocked_item") - before_item, 1, 0);
    assert_float_equal(drop_metric(f, "blocked_author") - before_author, 2, 0);

    /* Another user blocks nothing: the same candidates all pass. */
    resp = filter(f, "hank", ids, 6);
    assert_int_equal(resp->n_candidates, 6);
}

/* The request in packed columns (item_ids, author_ids) is filtered as the
 * same candidates sent as messages: every reason (an exposure, consumed,
 * a blocked item, blocked authors from author_ids / attrs or from item
 * records, a repeat) with the same survivors, in kept_ids, and the same
 * counts; with author_ids left out, as candidates without attrs. Mixed or
 * malformed columns are refused. */
static void test_columns_match_candidates(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    seed_blocking_user(f, "cols", "41", "46", (const uint64_t[]){42, 43, 46});
    record(f, "cols", (const uint64_t[]){47}, 1, 0);
    /* 44: author 7 by attrs only; 48: author 9 by attrs over a record saying 8. */
    put_item(f, 48, 8);
    const uint64_t ids[] = {41, 42, 43, 44, 45, 46, 47, 42, 48, 49};
    const size_t n = sizeof ids / sizeof ids[0];
    const uint64_t authors[] = {0, 0, 0, 7, 0, 0, 0, 0, 9, 0};
    for (int with_authors = 0; with_authors < 2; with_authors++) {
        Cascade__V1__FilterRequest *req = filter_request(f->arena, "cols", ids, n);
        Cascade__V1__ItemAttributes attrs[10];
        for (size_t i = 0; with_authors && i < n; i++)
            if (authors[i]) {
                cascade__v1__item_attributes__init(&attrs[i]);
                attrs[i].author_id = authors[i];
                req->candidates[i]->attrs = &attrs[i];
            }
        Cascade__V1__FilterResponse *by_msg = NULL, *by_col = NULL;
        assert_int_equal(
            cascade_filter_run(f->filter, f->arena, INT64_MAX, req, &by_msg, err, sizeof err), 0);
        Cascade__V1__FilterRequest *cols = filter_request(f->arena, "cols", ids, 0);
        cols->n_item_ids = n;
        cols->item_ids = (uint64_t *)ids;
        if (with_authors) {
            cols->n_author_ids = n;
            cols->author_ids = (uint64_t *)authors;
        }
        assert_int_equal(
            cascade_filter_run(f->filter, f->arena, INT64_MAX, cols, &by_col, err, sizeof err), 0);
        assert_int_equal(by_col->n_candidates, 0);
        assert_int_equal(by_col->n_kept_ids, by_msg->n_candidates);
        for (size_t i = 0; i < by_col->n_kept_ids; i++)
            assert_int_equal(by_col->kept_ids[i], by_msg->candidates[i]->item_id);
        for (size_t r = 0; r < by_msg->n_dropped; r++)
            assert_int_equal(dropped(by_col, by_msg->dropped[r]->reason),
                             by_msg->dropped[r]->count);
        /* What the messages say, worked out: 41 blocked item, 42 author 7
         * (record), 46 consumed, 47 exposed, the second 42 a repeat; with
         * attrs also 44 (author 7) and 48 (author 9). */
        const uint64_t kept_plain[] = {43, 44, 45, 48, 49}, kept_attrs[] = {43, 45, 49};
        const uint64_t *kept = with_authors ? kept_attrs : kept_plain;
        assert_int_equal(by_col->n_kept_ids, with_authors ? 3 : 5);
        for (size_t i = 0; i < by_col->n_kept_ids; i++)
            assert_int_equal(by_col->kept_ids[i], kept[i]);
        assert_int_equal(dropped(by_col, "blocked_author"), with_authors ? 3 : 1);
        assert_int_equal(dropped(by_col, "duplicate"), 1);
    }
    /* Both forms at once, author_ids of another length, too many ids. */
    Cascade__V1__FilterResponse *resp = NULL;
    Cascade__V1__FilterRequest *bad = filter_request(f->arena, "cols", ids, 2);
    bad->n_item_ids = 2;
    bad->item_ids = (uint64_t *)ids;
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, bad, &resp, err, sizeof err),
        CASCADE_EINVAL);
    assert_non_null(strstr(err, "exclusive"));
    bad = filter_request(f->arena, "cols", ids, 0);
    bad->n_item_ids = 3;
    bad->item_ids = (uint64_t *)ids;
    bad->n_author_ids = 2;
    bad->author_ids = (uint64_t *)authors;
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, bad, &resp, err, sizeof err),
        CASCADE_EINVAL);
    assert_non_null(strstr(err, "author_ids: 2 entries for 3 item_ids"));
    bad->n_author_ids = 0;
    bad->n_item_ids = 20001;
    bad->item_ids = cascade_arena_calloc(f->arena, 20001, sizeof *bad->item_ids);
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, bad, &resp, err, sizeof err),
        CASCADE_ETOOBIG);
    cascade_arena_reset(f->arena);
}

/* SMISMEMBER of key over ids[0..n), as 0/1 flags. */
static void smismember_flags(cascade_redis *c, const char *key, const uint64_t *ids, size_t n,
                             bool *member)
{
    const char *argv[66];
    char nums[64][24];
    size_t argvlen[66];
    redisReply *rep = NULL;
    argv[0] = "SMISMEMBER";
    argv[1] = key;
    for (size_t i = 0; i < n; i++) {
        snprintf(nums[i], sizeof nums[i], "%llu", (unsigned long long)ids[i]);
        argv[i + 2] = nums[i];
    }
    for (size_t i = 0; i < n + 2; i++)
        argvlen[i] = strlen(argv[i]);
    assert_int_equal(cascade_redis_command_argv(c, &rep, (int)n + 2, argv, argvlen), 0);
    assert_int_equal(rep->elements, n);
    for (size_t i = 0; i < n; i++)
        member[i] = rep->element[i]->integer == 1;
    freeReplyObject(rep);
}

/* The consumed and blocked-item sets (read whole with SRANDMEMBER when
 * smaller than the candidates, else SMISMEMBER) against SMISMEMBER of every
 * candidate, over 300 random rounds: sets from empty to twice the
 * candidates, members that are candidates, other ids, and strings that are
 * not an id in its decimal form ("07", "+7", "7 ", "-7", 21 digits) or hold
 * one past UINT64_MAX; candidates with repeats. The survivors and every
 * count are what the per-candidate commands say, and both read paths ran. */
static void test_user_sets_match_smismember(void **state)
{
    struct fixture *f = *state;
    cascade_redis *c = f->redis.conn;
    unsigned seed = 7;
    long long smis = test_redis_command_calls(f->redis.conn, "smismember"), small = 0;
    for (int round = 0; round < 300; round++) {
        char keys[2][CASCADE_KEY_MAX];
        redisReply *rep = NULL;
        uint64_t ids[64], standing[64];
        size_t n = 1 + (size_t)(rand_r(&seed) % 40), n_standing = 0;
        size_t set_size[2];
        for (size_t i = 0; i < n; i++)
            ids[i] = rand_r(&seed) % 5 == 0 ? UINT64_MAX - (uint64_t)(rand_r(&seed) % 3)
                                            : (uint64_t)(rand_r(&seed) % 60);
        cascade_key_user_consumed(keys[0], NS, "sets");
        cascade_key_user_blocked_items(keys[1], NS, "sets");
        for (int k = 0; k < 2; k++) {
            assert_int_equal(cascade_redis_command(c, &rep, "DEL %s", keys[k]), 0);
            freeReplyObject(rep);
            set_size[k] = (size_t)(rand_r(&seed) % (2 * n + 1));
            for (size_t m = 0; m < set_size[k]; m++) {
                static const char *const odd[] = {"0%llu", "+%llu", "%llu ", "-%llu",
                                                  "1%llu0000000000000000000"};
                char member[64];
                unsigned long long id = (unsigned long long)(rand_r(&seed) % 60);
                int kind = rand_r(&seed) % 8;
                if (kind < 5)
                    snprintf(member, sizeof member, kind < 2 ? "%llu" : odd[kind - 2] + 0, id);
                else if (kind == 5)
                    snprintf(member, sizeof member, "%llu", (unsigned long long)UINT64_MAX);
                else if (kind == 6)
                    snprintf(member, sizeof member, "18446744073709551616"); /* UINT64_MAX + 1 */
                else
                    snprintf(member, sizeof member, odd[rand_r(&seed) % 5], id);
                assert_int_equal(cascade_redis_command(c, &rep, "SADD %s %s", keys[k], member), 0);
                freeReplyObject(rep);
            }
            assert_int_equal(cascade_redis_command(c, &rep, "SCARD %s", keys[k]), 0);
            set_size[k] = (size_t)rep->integer;
            freeReplyObject(rep);
        }
        /* Expected: first occurrences stand; consumed, then blocked items. */
        enum { EXPOSED, CONSUMED, BLOCKED_ITEM, BLOCKED_AUTHOR, DUPLICATE, REASONS };
        static const char *const reason[REASONS] = {"exposed", "consumed", "blocked_item",
                                                    "blocked_author", "duplicate"};
        uint32_t want[REASONS] = {0};
        bool consumed[64], blocked[64];
        for (size_t i = 0; i < n; i++) {
            bool repeat = false;
            for (size_t j = 0; j < i && !repeat; j++)
                repeat = ids[j] == ids[i];
            if (repeat)
                want[DUPLICATE]++;
            else
                standing[n_standing++] = ids[i];
        }
        smismember_flags(c, keys[0], standing, n_standing, consumed);
        smismember_flags(c, keys[1], standing, n_standing, blocked);
        uint64_t kept[64];
        size_t n_kept = 0;
        for (size_t j = 0; j < n_standing; j++)
            if (consumed[j])
                want[CONSUMED]++;
            else if (blocked[j])
                want[BLOCKED_ITEM]++;
            else
                kept[n_kept++] = standing[j];
        small += set_size[0] < n_standing && set_size[1] < n_standing;

        Cascade__V1__FilterResponse *resp = filter(f, "sets", ids, n);
        assert_int_equal(resp->n_candidates, n_kept);
        for (size_t j = 0; j < n_kept; j++)
            assert_int_equal(resp->candidates[j]->item_id, kept[j]);
        for (int r = 0; r < REASONS; r++)
            assert_int_equal(dropped(resp, reason[r]), want[r]);
        cascade_arena_reset(f->arena);
    }
    /* Both read paths: whole sets, and SMISMEMBER for sets as large as the
     * candidates (this test's own reference calls are 600 of the count). */
    assert_true(small > 50);
    assert_true(test_redis_command_calls(f->redis.conn, "smismember") - smis > 600 + 50);
}

/* Item records are read only for users who blocked some author. */
static void test_item_records_only_when_authors_blocked(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    put_item(f, 31, 3);
    put_item(f, 32, 4);
    const uint64_t ids[] = {31, 32, 33};
    long long mget = test_redis_command_calls(f->redis.conn, "mget");
    Cascade__V1__FilterResponse *resp = filter(f, "ivan", ids, 3);
    assert_int_equal(resp->n_candidates, 3);
    /* Common path: one MGET (the exposure windows), none for item records. */
    assert_int_equal(test_redis_command_calls(f->redis.conn, "mget"), mget + 1);

    sadd(f, cascade_key_user_blocked_authors(key, NS, "ivan"), "4");
    resp = filter(f, "ivan", ids, 3);
    assert_int_equal(test_redis_command_calls(f->redis.conn, "mget"),
                     mget + 3); /* windows twice, item records once */
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 31);
    assert_int_equal(resp->candidates[1]->item_id, 33);
    assert_int_equal(dropped(resp, "blocked_author"), 1);
}

/* The exposure filter at its sized capacity: record expected_items (5000)
 * items in one window, then probe 200,000 ids never shown through the real
 * Filter path. Every recorded item is dropped (no false negatives) and the
 * share of probes dropped stays within the configured fp_rate (0.001). */
static void test_false_positive_rate_at_capacity(void **state)
{
    struct fixture *f = *state;
    enum { EXPECTED = 5000, PROBES = 200000, CHUNK = 20000 };
    const double target = 0.001;
    static uint64_t shown[EXPECTED], probe[CHUNK];
    for (size_t i = 0; i < EXPECTED; i++)
        shown[i] = 1000000007ULL + 7919ULL * i;
    for (size_t i = 0; i < EXPECTED; i += 1000) {
        record(f, "fp-user", shown + i, 1000, T0);
        cascade_arena_reset(f->arena);
    }
    Cascade__V1__FilterResponse *resp = filter(f, "fp-user", shown, EXPECTED);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(dropped(resp, "exposed"), EXPECTED);

    uint64_t false_positives = 0;
    for (size_t start = 0; start < PROBES; start += CHUNK) {
        cascade_arena_reset(f->arena);
        for (size_t i = 0; i < CHUNK; i++)
            probe[i] = 5000000000ULL + 104729ULL * (start + i); /* disjoint from shown */
        resp = filter(f, "fp-user", probe, CHUNK);
        false_positives += dropped(resp, "exposed");
        assert_int_equal(resp->n_candidates + dropped(resp, "exposed"), CHUNK);
    }
    double rate = (double)false_positives / PROBES;
    struct cascade_bloom_params p = cascade_filter_bloom_params(f->filter);
    print_message("exposure Bloom filter (m=%llu bits, k=%u) at %d items: false-positive rate "
                  "%.5f (%llu of %d), target %.4f\n",
                  (unsigned long long)p.bits, p.hashes, EXPECTED, rate,
                  (unsigned long long)false_positives, PROBES, target);
    assert_true(rate <= target);
    cascade_arena_reset(f->arena);
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__FilterResponse *resp = NULL;
    Cascade__V1__RecordExposureResponse *rresp = NULL;
    const uint64_t one = 1;
    assert_int_equal(cascade_filter_run(f->filter, f->arena, INT64_MAX,
                                        filter_request(f->arena, "", &one, 1), &resp, err,
                                        sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    assert_int_equal(cascade_filter_run(f->filter, f->arena, INT64_MAX,
                                        filter_request(f->arena, NULL, &one, 1), &resp, err,
                                        sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");

    cascade_filter *small = make_filter(f->redis.pool, "{\"filter\": {\"max_candidates\": 3}}");
    const uint64_t four[] = {1, 2, 3, 4};
    assert_int_equal(cascade_filter_run(small, f->arena, INT64_MAX,
                                        filter_request(f->arena, "u", four, 4), &resp, err,
                                        sizeof err),
                     CASCADE_ETOOBIG);
    assert_string_equal(err, "4 candidates exceed the limit of 3");
    cascade_filter_destroy(small);

    assert_int_equal(cascade_filter_record(f->filter, f->arena, INT64_MAX,
                                           record_request(f->arena, "", &one, 1, T0), &rresp, err,
                                           sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "user_id is empty");
    char long_id[70];
    memset(long_id, 'y', 69);
    long_id[69] = '\0';
    assert_int_equal(cascade_filter_record(f->filter, f->arena, INT64_MAX,
                                           record_request(f->arena, long_id, &one, 1, T0), &rresp,
                                           err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "user_id is longer than 64 bytes");
    assert_int_equal(cascade_filter_record(f->filter, f->arena, INT64_MAX,
                                           record_request(f->arena, "\xe4\xb8", &one, 1, T0),
                                           &rresp, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "user_id is not valid UTF-8");
    Cascade__V1__FilterRequest *bad = filter_request(f->arena, "u", &one, 1);
    bad->experiments = test_experiment(f->arena, "filter", "exp", "k", "v");
    bad->experiments->n_layers = 33; /* only the count is looked at */
    assert_int_equal(
        cascade_filter_run(f->filter, f->arena, INT64_MAX, bad, &resp, err, sizeof err),
        CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers: 33 entries, at most 32");
    uint64_t many[1001] = {0};
    assert_int_equal(cascade_filter_record(f->filter, f->arena, INT64_MAX,
                                           record_request(f->arena, "u", many, 1001, T0), &rresp,
                                           err, sizeof err),
                     CASCADE_ETOOBIG);
    assert_string_equal(err, "1001 item_ids exceed the limit of 1000 per call");

    assert_int_equal(cascade_filter_run(f->filter, f->arena, cascade_now_ms() - 1,
                                        filter_request(f->arena, "u", &one, 1), &resp, err,
                                        sizeof err),
                     CASCADE_ETIMEDOUT);
}

static void test_bad_config(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse("{\"filter\": {\"exposure\": {\"fp_rate\": 2}}}",
                                               "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_filter_create(cfg, NULL, NS, NULL, err, sizeof err));
    assert_non_null(strstr(err, "filter.exposure.fp_rate"));
    cascade_config_destroy(cfg);
}

static void test_window_floor(void **state)
{
    (void)state;
    assert_int_equal(cascade_filter_window(0, DAY), 0);
    assert_int_equal(cascade_filter_window(DAY - 1, DAY), 0);
    assert_int_equal(cascade_filter_window(DAY, DAY), 1);
    assert_int_equal(cascade_filter_window(-1, DAY), -1);
}

static void test_redis_down_is_unavailable(void **state)
{
    struct fixture *f = *state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_filter *flt = make_filter(dead, "{}");
    char err[256] = "";
    Cascade__V1__FilterResponse *resp = NULL;
    Cascade__V1__RecordExposureResponse *rresp = NULL;
    const uint64_t one = 1;
    assert_int_equal(cascade_filter_run(flt, f->arena, INT64_MAX,
                                        filter_request(f->arena, "u", &one, 1), &resp, err,
                                        sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_int_equal(cascade_filter_record(flt, f->arena, INT64_MAX,
                                           record_request(f->arena, "u", &one, 1, T0), &rresp, err,
                                           sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "127.0.0.1"));
    cascade_filter_destroy(flt);
    cascade_redis_pool_destroy(dead);
}

/* RecordExposure then Filter over real gRPC, plus an INVALID_ARGUMENT. */
static void test_rpc_handlers(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    size_t n = 0;
    const struct cascade_rpc_method *m = cascade_filter_methods(&n);
    assert_int_equal(n, 2);
    struct cascade_rpc_server_opts so = {
        .listen_addr = "127.0.0.1:0", .threads = 2, .service_name = "cascade.v1.Filter"};
    cascade_rpc_server *srv = cascade_rpc_server_create(&so, m, n, f->filter, err, sizeof err);
    assert_non_null(srv);
    assert_int_equal(cascade_rpc_server_start(srv, err, sizeof err), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", cascade_rpc_server_port(srv));
    cascade_rpc_channel *ch = cascade_rpc_channel_create(target, 0);

    const uint64_t ids[] = {501, 502, 503};
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = "/cascade.v1.Filter/RecordExposure",
        .request = &record_request(f->arena, "erin", ids, 2, 0)->base, /* 0 = server time */
        .response_type = &cascade__v1__record_exposure_response__descriptor,
        .deadline_ms = cascade_now_ms() + 10000};
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    assert_int_equal(((Cascade__V1__RecordExposureResponse *)call.response)->recorded, 2);

    Cascade__V1__FilterRequest *freq = filter_request(f->arena, "erin", ids, 3);
    freq->user->request_time_s = 0; /* server time: the window just written */
    call = (struct cascade_rpc_call){.channel = ch,
                                     .method = "/cascade.v1.Filter/Filter",
                                     .request = &freq->base,
                                     .response_type = &cascade__v1__filter_response__descriptor,
                                     .deadline_ms = cascade_now_ms() + 10000};
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    const Cascade__V1__FilterResponse *resp = (const void *)call.response;
    assert_int_equal(resp->n_candidates, 1);
    assert_int_equal(resp->candidates[0]->item_id, 503);

    call.request = &filter_request(f->arena, "", ids, 3)->base;
    call.deadline_ms = cascade_now_ms() + 10000;
    assert_int_not_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(call.status_message, "user.user_id is empty");

    cascade_rpc_channel_destroy(ch);
    cascade_rpc_server_destroy(srv);
}

int main(void)
{
    cascade_rpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_negatives),
        cmocka_unit_test(test_windows_rotate),
        cmocka_unit_test(test_client_time_picks_no_window),
        cmocka_unit_test(test_reserve_takes_first_unexposed),
        cmocka_unit_test(test_concurrent_reservations_disjoint),
        cmocka_unit_test(test_reserve_matches_commands),
        cmocka_unit_test(test_reserve_error_keeps_connection_in_step),
        cmocka_unit_test(test_reserve_refuses_wrong_type),
        cmocka_unit_test(test_reasons_and_order),
        cmocka_unit_test(test_blocked_items_and_authors),
        cmocka_unit_test(test_columns_match_candidates),
        cmocka_unit_test(test_item_records_only_when_authors_blocked),
        cmocka_unit_test(test_user_sets_match_smismember),
        cmocka_unit_test(test_false_positive_rate_at_capacity),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_window_floor),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_rpc_handlers),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    cascade_rpc_shutdown();
    return failed;
}
