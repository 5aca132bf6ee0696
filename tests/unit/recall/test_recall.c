/* Tests of the Recall stage's machinery against a private redis-server:
 * channel merge and provenance, validation messages (unknown and disabled
 * channels), config errors, Redis and deadline failures for every channel, a
 * corrupt record, generation lookup (missing, switching to a newly
 * published generation, caching), per-channel metrics, the wire decoder and
 * CF scorer on arrays, and the RPC handler through a real in-process gRPC
 * server. The channels' own results are in test_recall_channels.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>

#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "hash.h"
#include "idmap.h"
#include "metrics.h"
#include "recall_seed.h"
#include "rpc.h"

struct fixture {
    struct test_redis_fixture redis;
    cascade_recall *recall;
    cascade_arena *arena;
};

/* Hot list (gen 1): items 1..10 with score 10·id. ItemCF (gen 1): user "u1"
 * clicked 100 (weight 1) and liked 200 (weight 2); lists below. */
static void seed(cascade_redis *r)
{
    char key[CASCADE_KEY_MAX];
    for (uint64_t id = 1; id <= 10; id++)
        seed_zadd(r, seed_key(key, "hot", 1, NULL), 10.0 * (double)id, id);
    seed_push(r, "u1", 100, 1.0f);
    seed_push(r, "u1", 200, 2.0f);
    seed_item_nlist(r, "itemcf", 1, 100, (uint64_t[]){200, 300, 400, 600},
                    (float[]){0.9f, 0.5f, 0.4f, 0.35f}, 4);
    seed_item_nlist(r, "itemcf", 1, 200, (uint64_t[]){100, 500, 300}, (float[]){0.8f, 0.3f, 0.1f},
                    3);
    seed_publish(r, "hot", 1);
    seed_publish(r, "itemcf", 1);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    seed(f.redis.conn);
    /* k = 3 neighbours per interaction so item 600 (4th of 100's list) is cut;
     * generations are looked up on every request. */
    f.recall = seed_recall(f.redis.pool, NS, NULL,
                           "{\"recall\": {\"generation_ttl_ms\": 0,"
                           " \"channels\": {\"itemcf\": {\"neighbours\": 3}}}}");
    f.arena = cascade_arena_create(0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    cascade_recall_destroy(f->recall);
    test_redis_fixture_stop(&f->redis);
    return 0;
}

static int run(cascade_recall *r, cascade_arena *a, Cascade__V1__RecallRequest *req,
               Cascade__V1__RecallResponse **resp, char *err, size_t errlen)
{
    return cascade_recall_run(r, a, INT64_MAX, req, resp, err, errlen);
}

static void test_two_channels_merge(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    /* Make 300 hot as well: it must come back once, with both hits. The
     * generation list is edited in place, which only a stage without the list
     * cache sees (and the fixture's stage must not cache the edited list). */
    cascade_recall *uncached =
        seed_recall(f->redis.pool, NS, NULL,
                    "{\"recall\": {\"generation_ttl_ms\": 0, \"list_cache\": {\"enabled\": false},"
                    " \"channels\": {\"itemcf\": {\"neighbours\": 3}}}}");
    seed_zadd(f->redis.conn, seed_key(key, "hot", 1, NULL), 1000, 300);
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(uncached, f->arena,
                         seed_request(f->arena, "u1", 5, 2, (const char *[]){"hot", "itemcf"}),
                         &resp, err, sizeof err),
                     0);
    size_t found300 = 0;
    for (size_t i = 0; i < resp->n_candidates; i++) {
        for (size_t j = 0; j < i; j++)
            assert_true(resp->candidates[i]->item_id != resp->candidates[j]->item_id);
        if (resp->candidates[i]->item_id == 300) {
            found300++;
            assert_int_equal(resp->candidates[i]->n_channels, 2);
            assert_string_equal(resp->candidates[i]->channels[0]->channel, "hot");
            assert_int_equal(resp->candidates[i]->channels[0]->rank, 0);
            assert_string_equal(resp->candidates[i]->channels[1]->channel, "itemcf");
            assert_int_equal(resp->candidates[i]->channels[1]->rank, 0);
            assert_float_equal(resp->candidates[i]->channels[1]->score, 0.7f, 1e-5);
        }
    }
    assert_int_equal(found300, 1);
    assert_int_equal(resp->n_candidates, 5 + 3 - 1);
    assert_int_equal(resp->n_channels, 2);
    assert_int_equal(resp->channels[0]->count, 5);
    assert_int_equal(resp->channels[1]->count, 3);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "ZREM %s 300", key), 0);
    freeReplyObject(rep);
    cascade_recall_destroy(uncached);
}

static void expect_invalid(struct fixture *f, Cascade__V1__RecallRequest *req, int code,
                           const char *message)
{
    char err[512] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f->recall, f->arena, req, &resp, err, sizeof err), code);
    assert_string_equal(err, message);
}

#define KNOWN                                                                                      \
    "hot, itemcf, swing, ease, usercf, new, geo, city, follow_author, interacted_author, "         \
    "similar_author, cache, interest, demo_hot, two_tower"

static void test_validation(void **state)
{
    struct fixture *f = *state;
    cascade_arena *a = f->arena;
    assert_string_equal(cascade_recall_channel_list(), KNOWN);
    expect_invalid(f, seed_request(a, "u1", 10, 1, (const char *[]){"foo"}), CASCADE_EINVAL,
                   "unknown channel \"foo\" (known: " KNOWN ")");
    expect_invalid(f, seed_request(a, "", 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is empty");
    expect_invalid(f, seed_request(a, NULL, 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is empty");
    char long_id[66];
    memset(long_id, 'x', 65);
    long_id[65] = '\0';
    expect_invalid(f, seed_request(a, long_id, 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is longer than 64 bytes");
    long_id[64] = '\0'; /* 64 bytes is fine */
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f->recall, a, seed_request(a, long_id, 10, 1, (const char *[]){"hot"}),
                         &resp, err, sizeof err),
                     0);
    expect_invalid(f, seed_request(a, "u1", 0, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "quota 0 out of range 1..5000");
    expect_invalid(f, seed_request(a, "u1", 5001, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "quota 5001 out of range 1..5000");
    expect_invalid(f, seed_request(a, "u1", 10, 0, NULL), CASCADE_EINVAL,
                   "channels is empty (known: " KNOWN ")");
    expect_invalid(f, seed_request(a, "u1", 10, 2, (const char *[]){"hot", "hot"}), CASCADE_EINVAL,
                   "channel \"hot\" is requested twice");
    /* Bounds and UTF-8 (common/request.h). */
    expect_invalid(f, seed_request(a, "u\xff", 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is not valid UTF-8");
    expect_invalid(f, seed_request(a, "u1", 10, 1, (const char *[]){"h\xc3"}), CASCADE_EINVAL,
                   "channels[0] is not valid UTF-8");
    char long_name[101];
    memset(long_name, 'c', 100);
    long_name[100] = '\0';
    expect_invalid(f, seed_request(a, "u1", 10, 2, (const char *[]){"hot", long_name}),
                   CASCADE_EINVAL, "channels[1]: 100 bytes, at most 64");
    Cascade__V1__RecallRequest *req = seed_request(a, "u1", 10, 1, (const char *[]){"hot"});
    req->user->device = long_name;
    expect_invalid(f, req, CASCADE_EINVAL, "user.device: 100 bytes, at most 64");
    req = seed_request(a, "u1", 10, 1, (const char *[]){"hot"});
    req->experiments = test_experiment(a, "recall", "exp", "recall.x", "1");
    req->experiments->layers[0]->experiment = "\xc0\xaf";
    expect_invalid(f, req, CASCADE_EINVAL, "experiments.layers[0].experiment is not valid UTF-8");
}

static void test_disabled_channel(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r = seed_recall(
        f->redis.pool, NS, NULL, "{\"recall\": {\"channels\": {\"swing\": {\"enabled\": false}}}}");
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(r, f->arena, seed_request(f->arena, "u1", 3, 1, (const char *[]){"swing"}),
                         &resp, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "channel \"swing\" is disabled (recall.channels.swing.enabled)");
    /* The others still run. */
    assert_int_equal(run(r, f->arena, seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"}),
                         &resp, err, sizeof err),
                     0);
    assert_int_equal(resp->n_candidates, 3);
    cascade_recall_destroy(r);
}

static void expect_bad_config(const char *json, const char *path)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_recall_create(cfg, NULL, NS, NULL, err, sizeof err));
    if (!strstr(err, path))
        fail_msg("\"%s\" does not name %s", err, path);
    cascade_config_destroy(cfg);
}

static void test_bad_config(void **state)
{
    (void)state;
    expect_bad_config("{\"recall\": {\"max_quota\": 0}}", "recall.max_quota");
    expect_bad_config("{\"recall\": {\"generation_ttl_ms\": -1}}", "recall.generation_ttl_ms");
    expect_bad_config("{\"recall\": {\"channels\": {\"geo\": {\"precision\": 13}}}}",
                      "recall.channels.geo.precision");
    expect_bad_config("{\"recall\": {\"channels\": {\"new\": {\"explore_share\": 1.5}}}}",
                      "recall.channels.new.explore_share");
    expect_bad_config("{\"recall\": {\"channels\": {\"cache\": {\"enabled\": 1}}}}",
                      "recall.channels.cache.enabled");
}

static void test_redis_down_is_unavailable(void **state)
{
    struct fixture *f = *state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_recall *r = seed_recall(dead, NS, NULL, "{}");
    const char *names[] = {"hot",
                           "itemcf",
                           "swing",
                           "usercf",
                           "new",
                           "geo",
                           "city",
                           "follow_author",
                           "interacted_author",
                           "similar_author",
                           "cache",
                           "interest",
                           "demo_hot"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char err[512] = "", prefix[64];
        Cascade__V1__RecallResponse *resp = NULL;
        assert_int_equal(
            run(r, f->arena, seed_request(f->arena, "u1", 3, 1, &names[i]), &resp, err, sizeof err),
            CASCADE_EUNAVAILABLE);
        snprintf(prefix, sizeof prefix, "%s: ", names[i]);
        if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, "redis 127.0.0.1:"))
            fail_msg("%s: \"%s\" should name the channel and the server", names[i], err);
    }
    cascade_recall_destroy(r);
    cascade_redis_pool_destroy(dead);
}

static void test_deadline(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(cascade_recall_run(f->recall, f->arena, cascade_now_ms() - 1,
                                        seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"}),
                                        &resp, err, sizeof err),
                     CASCADE_ETIMEDOUT);
    assert_string_equal(err, "deadline exceeded before channel \"hot\"");
}

/* A neighbour list that does not decode fails the channel with the key in
 * the message, and the connection stays usable (the pipeline was drained). */
static void test_corrupt_record(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX], err[512] = "";
    seed_push(f->redis.conn, "bad", 100, 1.0f);
    seed_push(f->redis.conn, "bad", 999, 1.0f);
    seed_push(f->redis.conn, "bad", 200, 1.0f);
    seed_set(f->redis.conn, seed_key(key, "itemcf", 1, "999"), "\x0a\x05\x08", 3);
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f->recall, f->arena,
                         seed_request(f->arena, "bad", 3, 1, (const char *[]){"itemcf"}), &resp,
                         err, sizeof err),
                     CASCADE_EUNAVAILABLE);
    assert_string_equal(err, "itemcf: neighbours: t:itemcf@1:999: not a valid NeighbourList "
                             "record (3 bytes)");
    assert_int_equal(run(f->recall, f->arena,
                         seed_request(f->arena, "u1", 3, 2, (const char *[]){"itemcf", "hot"}),
                         &resp, err, sizeof err),
                     0);
    assert_int_equal(resp->channels[0]->count, 3);
    assert_int_equal(resp->channels[1]->count, 3);
}

/* One call for several channels, each with its own quota: the counts follow
 * each quota, and a failing channel (a corrupt neighbour list) is reported
 * in its ChannelResult while the call succeeds with the other's candidates;
 * the same channels in the plain form fail the call. */
static void test_batched_channels(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX], err[512] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f->recall, f->arena,
                         seed_spec_request(f->arena, "u1", 2, (const char *[]){"hot", "itemcf"},
                                           (const uint32_t[]){4, 1}),
                         &resp, err, sizeof err),
                     0);
    assert_int_equal(resp->n_channels, 2);
    assert_int_equal(resp->channels[0]->count, 4);
    assert_int_equal(resp->channels[0]->status, GRPC_STATUS_OK);
    assert_int_equal(resp->channels[1]->count, 1);
    assert_int_equal(resp->channels[1]->status, GRPC_STATUS_OK);
    assert_int_equal(resp->n_candidates, 5);
    assert_int_equal(resp->candidates[0]->item_id, 10);  /* hot: 10·id, best first */
    assert_int_equal(resp->candidates[4]->item_id, 300); /* itemcf's best for u1 */
    /* lists: the same answer, each channel's list in its ChannelResult. */
    Cascade__V1__RecallRequest *lreq = seed_spec_request(
        f->arena, "u1", 2, (const char *[]){"hot", "itemcf"}, (const uint32_t[]){4, 1});
    Cascade__V1__RecallResponse *lresp = NULL;
    lreq->lists = true;
    assert_int_equal(run(f->recall, f->arena, lreq, &lresp, err, sizeof err), 0);
    assert_int_equal(lresp->n_candidates, 0);
    assert_int_equal(lresp->n_channels, 2);
    size_t hits = 0;
    for (size_t c = 0; c < 2; c++) {
        const Cascade__V1__ChannelResult *cr = lresp->channels[c];
        assert_int_equal(cr->count, resp->channels[c]->count);
        assert_int_equal(cr->n_item_ids, cr->count);
        assert_int_equal(cr->n_scores, cr->count);
        for (size_t i = 0; i < resp->n_candidates; i++)
            for (size_t h = 0; h < resp->candidates[i]->n_channels; h++) {
                const Cascade__V1__ChannelHit *hit = resp->candidates[i]->channels[h];
                if (strcmp(hit->channel, cr->channel) != 0)
                    continue;
                assert_true(hit->rank < cr->n_item_ids);
                assert_int_equal(cr->item_ids[hit->rank], resp->candidates[i]->item_id);
                assert_float_equal(cr->scores[hit->rank], hit->score, 0);
                hits++;
            }
    }
    assert_int_equal(hits, 5);

    seed_push(f->redis.conn, "bad2", 100, 1.0f);
    seed_push(f->redis.conn, "bad2", 998, 1.0f);
    seed_set(f->redis.conn, seed_key(key, "itemcf", 1, "998"), "\x0a\x05\x08", 3);
    assert_int_equal(run(f->recall, f->arena,
                         seed_spec_request(f->arena, "bad2", 2, (const char *[]){"itemcf", "hot"},
                                           (const uint32_t[]){3, 2}),
                         &resp, err, sizeof err),
                     0);
    assert_int_equal(resp->n_channels, 2);
    assert_string_equal(resp->channels[0]->channel, "itemcf");
    assert_int_equal(resp->channels[0]->status, GRPC_STATUS_UNAVAILABLE);
    assert_string_equal(resp->channels[0]->message, "itemcf: neighbours: t:itemcf@1:998: not a "
                                                    "valid NeighbourList record (3 bytes)");
    assert_int_equal(resp->channels[0]->count, 0);
    assert_int_equal(resp->channels[1]->status, GRPC_STATUS_OK);
    assert_string_equal(resp->channels[1]->message, "");
    assert_int_equal(resp->channels[1]->count, 2);
    assert_int_equal(resp->n_candidates, 2);
    for (size_t i = 0; i < resp->n_candidates; i++) {
        assert_int_equal(resp->candidates[i]->n_channels, 1);
        assert_string_equal(resp->candidates[i]->channels[0]->channel, "hot");
    }
    assert_int_equal(run(f->recall, f->arena,
                         seed_request(f->arena, "bad2", 3, 2, (const char *[]){"itemcf", "hot"}),
                         &resp, err, sizeof err),
                     CASCADE_EUNAVAILABLE);
}

/* A batched call whose deadline has passed answers with every channel
 * DEADLINE_EXCEEDED, each named, instead of failing. */
static void test_batched_deadline(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(
        cascade_recall_run(f->recall, f->arena, cascade_now_ms() - 1,
                           seed_spec_request(f->arena, "u1", 2, (const char *[]){"hot", "itemcf"},
                                             (const uint32_t[]){3, 3}),
                           &resp, err, sizeof err),
        0);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(resp->channels[0]->status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_string_equal(resp->channels[0]->message, "deadline exceeded before channel \"hot\"");
    assert_int_equal(resp->channels[1]->status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_string_equal(resp->channels[1]->message, "deadline exceeded before channel \"itemcf\"");
}

static void test_batched_validation(void **state)
{
    struct fixture *f = *state;
    cascade_arena *a = f->arena;
    Cascade__V1__RecallRequest *both =
        seed_spec_request(a, "u1", 1, (const char *[]){"hot"}, (const uint32_t[]){3});
    both->n_channels = 1;
    both->channels = (char *[]){"itemcf"};
    both->quota = 3;
    expect_invalid(f, both, CASCADE_EINVAL,
                   "give either channels (with quota) or channel_specs, not both");
    expect_invalid(
        f,
        seed_spec_request(a, "u1", 2, (const char *[]){"hot", "itemcf"}, (const uint32_t[]){3, 0}),
        CASCADE_EINVAL, "channel_specs[1].quota 0 out of range 1..5000");
    /* An unknown channel in a batch costs that channel only. */
    char err[512] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f->recall, a,
                         seed_spec_request(a, "u1", 2, (const char *[]){"nope", "hot"},
                                           (const uint32_t[]){3, 2}),
                         &resp, err, sizeof err),
                     0);
    assert_int_equal(resp->n_channels, 2);
    assert_string_equal(resp->channels[0]->channel, "nope");
    assert_int_equal(resp->channels[0]->status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(resp->channels[0]->message, "unknown channel \"nope\" (known: " KNOWN ")");
    assert_int_equal(resp->channels[0]->count, 0);
    assert_int_equal(resp->channels[1]->status, GRPC_STATUS_OK);
    assert_int_equal(resp->channels[1]->count, 2);
    assert_int_equal(resp->n_candidates, 2);
}

/* A namespace where nothing was ever published: every channel is empty, and
 * none of them is an error. */
static void test_missing_generation_is_empty(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r = seed_recall(f->redis.pool, "fresh", NULL, "{}");
    const char *names[] = {"hot",
                           "itemcf",
                           "swing",
                           "usercf",
                           "new",
                           "city",
                           "follow_author",
                           "interacted_author",
                           "similar_author",
                           "demo_hot"};
    size_t n = sizeof names / sizeof names[0];
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 10, n, names);
    req->user->city = 7;
    Cascade__V1__RecallResponse *resp = seed_run1(r, f->arena, req);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(resp->n_channels, n);
    cascade_recall_destroy(r);
}

/* Publishing generation 2 switches a stage with TTL 0 at once; a stage with a
 * long TTL keeps serving the generation it resolved. Generation 3 (same
 * contents as 1) restores the fixture for the tests that follow. */
static void test_generation_switch(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    cascade_recall *cached =
        seed_recall(f->redis.pool, NS, NULL, "{\"recall\": {\"generation_ttl_ms\": 3600000}}");
    Cascade__V1__RecallRequest *req = seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"});
    seed_expect(seed_run1(f->recall, f->arena, req), "hot", (uint64_t[]){10, 9, 8}, NULL, 3);
    seed_expect(seed_run1(cached, f->arena, req), "hot", (uint64_t[]){10, 9, 8}, NULL, 3);

    seed_zadd(f->redis.conn, seed_key(key, "hot", 2, NULL), 5, 99);
    seed_publish(f->redis.conn, "hot", 2);
    seed_expect(seed_run1(f->recall, f->arena, req), "hot", (uint64_t[]){99}, (float[]){5}, 1);
    seed_expect(seed_run1(cached, f->arena, req), "hot", (uint64_t[]){10, 9, 8}, NULL, 3);
    cascade_recall_destroy(cached);

    for (uint64_t id = 1; id <= 10; id++)
        seed_zadd(f->redis.conn, seed_key(key, "hot", 3, NULL), 10.0 * (double)id, id);
    seed_publish(f->redis.conn, "hot", 3);
    seed_expect(seed_run1(f->recall, f->arena, req), "hot", (uint64_t[]){10, 9, 8}, NULL, 3);
}

struct hammer {
    cascade_recall *recall;
    int bad; /* responses that were not exactly 10, 9, 8 */
    int failed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    cascade_arena *a = cascade_arena_create(0);
    for (int i = 0; i < 200; i++) {
        char err[256];
        Cascade__V1__RecallResponse *resp = NULL;
        Cascade__V1__RecallRequest *req = seed_request(a, "u1", 3, 1, (const char *[]){"hot"});
        if (cascade_recall_run(h->recall, a, INT64_MAX, req, &resp, err, sizeof err) != 0)
            h->failed++;
        else if (resp->n_candidates != 3 || resp->candidates[0]->item_id != 10 ||
                 resp->candidates[2]->item_id != 8)
            h->bad++;
        cascade_arena_reset(a);
    }
    cascade_arena_destroy(a);
    return NULL;
}

/* Four threads share one stage (1 ms generation cache, so both the cached
 * and the refreshing paths run) while generation 4 of the hot list, with the
 * same contents, is published: every answer is the same. */
static void test_concurrent_requests(void **state)
{
    struct fixture *f = *state;
    char key[CASCADE_KEY_MAX];
    cascade_recall *r =
        seed_recall(f->redis.pool, NS, NULL, "{\"recall\": {\"generation_ttl_ms\": 1}}");
    struct hammer h[4] = {{r, 0, 0}, {r, 0, 0}, {r, 0, 0}, {r, 0, 0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    for (uint64_t id = 1; id <= 10; id++)
        seed_zadd(f->redis.conn, seed_key(key, "hot", 4, NULL), 10.0 * (double)id, id);
    seed_publish(f->redis.conn, "hot", 4);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].failed, 0);
        assert_int_equal(h[i].bad, 0);
    }
    cascade_recall_destroy(r);
}

static double counter(cascade_metrics *m, const char *name, const char *channel)
{
    cascade_metric_family *fam = cascade_metrics_counter(m, name, "x", "channel");
    assert_non_null(fam);
    return cascade_metric_value(cascade_metric_get(fam, (const char *const[]){channel}));
}

static void test_metrics(void **state)
{
    struct fixture *f = *state;
    cascade_metrics *m = cascade_metrics_create();
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_recall *r = seed_recall(f->redis.pool, NS, m, "{}");
    cascade_recall *down = seed_recall(dead, NS, m, "{}");
    char err[512];
    Cascade__V1__RecallResponse *resp = NULL;
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"}));
    seed_run1(r, f->arena, seed_request(f->arena, "u1", 3, 2, (const char *[]){"itemcf", "hot"}));
    assert_int_equal(run(down, f->arena,
                         seed_request(f->arena, "u1", 3, 1, (const char *[]){"hot"}), &resp, err,
                         sizeof err),
                     CASCADE_EUNAVAILABLE);
    /* Refused requests are not channel runs. */
    assert_int_equal(run(r, f->arena, seed_request(f->arena, "u1", 3, 1, (const char *[]){"nope"}),
                         &resp, err, sizeof err),
                     CASCADE_EINVAL);

    assert_float_equal(counter(m, "cascade_recall_channel_requests_total", "hot"), 3, 0);
    assert_float_equal(counter(m, "cascade_recall_channel_candidates_total", "hot"), 6, 0);
    assert_float_equal(counter(m, "cascade_recall_channel_errors_total", "hot"), 1, 0);
    assert_float_equal(counter(m, "cascade_recall_channel_requests_total", "itemcf"), 1, 0);
    /* itemcf with the default k = 50 also finds 600: 300, 500, then 400 (quota 3). */
    assert_float_equal(counter(m, "cascade_recall_channel_candidates_total", "itemcf"), 3, 0);
    assert_float_equal(counter(m, "cascade_recall_channel_errors_total", "itemcf"), 0, 0);
    assert_float_equal(counter(m, "cascade_recall_channel_requests_total", "swing"), 0, 0);
    char *text = cascade_metrics_render(m);
    assert_non_null(text);
    assert_non_null(
        strstr(text, "cascade_recall_channel_latency_seconds_count{channel=\"hot\"} 3\n"));
    assert_non_null(
        strstr(text, "cascade_recall_channel_latency_seconds_count{channel=\"itemcf\"} 1\n"));
    assert_non_null(
        strstr(text, "cascade_recall_channel_latency_seconds_count{channel=\"demo_hot\"} 0\n"));
    free(text);
    cascade_recall_destroy(down);
    cascade_recall_destroy(r);
    cascade_redis_pool_destroy(dead);
    cascade_metrics_destroy(m);
}

/* The hand decoder agrees with nanopb on encoded lists, honours max, skips
 * unknown fields, and rejects (or cleanly shortens) truncated input. */
static void test_decode_neighbours(void **state)
{
    (void)state;
    cascade_v1_NeighbourList l = cascade_v1_NeighbourList_init_zero;
    uint8_t buf[cascade_v1_NeighbourList_size];
    size_t len = 0, count = 0;
    uint64_t ids[200];
    float scores[200];
    l.neighbours_count = 200;
    for (size_t i = 0; i < 200; i++) {
        l.neighbours[i].item_id = i * 7919 * 1000003ULL; /* up to 10-byte varints */
        l.neighbours[i].score = i == 3 ? 0.0f : 1.0f / (float)(i + 1);
    }
    assert_int_equal(
        cascade_record_encode(cascade_v1_NeighbourList_fields, &l, buf, sizeof buf, &len), 0);
    assert_int_equal(cascade_recall_decode_neighbours(buf, len, 200, ids, scores, &count), 0);
    assert_int_equal(count, 200);
    for (size_t i = 0; i < 200; i++) {
        assert_int_equal(ids[i], l.neighbours[i].item_id);
        assert_true(scores[i] == l.neighbours[i].score);
    }
    assert_int_equal(cascade_recall_decode_neighbours(buf, len, 5, ids, scores, &count), 0);
    assert_int_equal(count, 5);
    assert_int_equal(cascade_recall_decode_neighbours(buf, 0, 5, ids, scores, &count), 0);
    assert_int_equal(count, 0);
    for (size_t cut = 1; cut < len; cut++) {
        int rc = cascade_recall_decode_neighbours(buf, cut, 200, ids, scores, &count);
        assert_true(rc == CASCADE_EFORMAT || (rc == 0 && count < 200));
        for (size_t i = 0; rc == 0 && i < count; i++)
            assert_int_equal(ids[i], l.neighbours[i].item_id);
    }
    /* Field 9 (varint) before the list and field 3 (fixed32) inside an entry. */
    const uint8_t extra[] = {0x48, 0x05, 0x0a, 0x0c, 0x08, 0x2a, 0x1d, 1,
                             2,    3,    4,    0x15, 0x00, 0x00, 0x80, 0x3f};
    assert_int_equal(cascade_recall_decode_neighbours(extra, sizeof extra, 10, ids, scores, &count),
                     0);
    assert_int_equal(count, 1);
    assert_int_equal(ids[0], 42);
    assert_float_equal(scores[0], 1.0f, 0);
    const uint8_t group[] = {0x0b}; /* wire type 3 */
    assert_int_equal(cascade_recall_decode_neighbours(group, 1, 10, ids, scores, &count),
                     CASCADE_EFORMAT);
    /* Random bytes (fixed seed): never more than max entries, never a crash
     * (the sanitizer build checks the reads). */
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 20000; round++) {
        uint8_t junk[64];
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            junk[i] = (uint8_t)(round & 1 ? x : (x & 0x3f) | 0x08); /* odd rounds: any byte */
        }
        int rc = cascade_recall_decode_neighbours(junk, n, 4, ids, scores, &count);
        assert_true(rc == CASCADE_EFORMAT || (rc == 0 && count <= 4));
    }
}

static void test_itemcf_score_arrays(void **state)
{
    struct fixture *f = *state;
    struct cascade_recall_hits lists[3] = {
        {(uint64_t[]){3, 4}, (float[]){0.5f, 0.5f}, 2}, /* item 1 */
        {(uint64_t[]){1}, (float[]){0.9f}, 1},          /* item 2: 1 is a source */
        {NULL, NULL, 0},                                /* item 9: no list */
    };
    const uint64_t src[] = {1, 2, 9};
    const float w[] = {2.0f, 1.0f, 1.0f};
    struct cascade_recall_hits hits;
    assert_int_equal(cascade_recall_itemcf_score(src, w, 3, lists, 50, 10, f->arena, &hits), 0);
    /* 3 and 4 tie at 1.0: the smaller id comes first. */
    assert_int_equal(hits.count, 2);
    assert_int_equal(hits.ids[0], 3);
    assert_int_equal(hits.ids[1], 4);
    assert_float_equal(hits.scores[0], 1.0f, 1e-6);
    /* k = 1 keeps only the first neighbour of each list. */
    assert_int_equal(cascade_recall_itemcf_score(src, w, 3, lists, 1, 10, f->arena, &hits), 0);
    assert_int_equal(hits.count, 1);
    assert_int_equal(hits.ids[0], 3);
}

static void test_age_bucket(void **state)
{
    (void)state;
    const uint32_t ages[] = {0, 1, 17, 18, 24, 25, 34, 35, 44, 45, 54, 55, 120};
    const uint32_t want[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6};
    for (size_t i = 0; i < sizeof ages / sizeof ages[0]; i++)
        assert_int_equal(cascade_recall_age_bucket(ages[i]), want[i]);
}

static void test_idmap_grows(void **state)
{
    struct fixture *f = *state;
    cascade_idmap m;
    assert_int_equal(cascade_idmap_init(&m, f->arena, 4), 0);
    for (uint64_t k = 0; k < 10000; k++) {
        bool created = false;
        struct cascade_idmap_entry *e = cascade_idmap_upsert(&m, k * 7919, &created);
        assert_non_null(e);
        assert_true(created);
        e->score = (double)k;
    }
    assert_int_equal(m.count, 10000);
    for (uint64_t k = 0; k < 10000; k++) {
        struct cascade_idmap_entry *e = cascade_idmap_find(&m, k * 7919);
        assert_non_null(e);
        assert_float_equal(e->score, (double)k, 0);
    }
    assert_null(cascade_idmap_find(&m, 1));
}

/* The map's table layout is the one XXH3 (cascade_hash64 of the key's eight
 * bytes, seed "cascade1") with linear probing gives: its slot hash is inlined
 * for speed, and recall walks the slots in table order, so a different hash
 * would reorder equal-score candidates. The layout is rebuilt here from
 * cascade_hash64 and compared slot by slot. */
static void test_idmap_layout_is_xxh3(void **state)
{
    (void)state;
    enum { N = 3000 };
    const uint64_t seed = 0x6361736361646531ULL; /* "cascade1", as idmap.c */
    cascade_idmap m;
    assert_int_equal(cascade_idmap_init(&m, NULL, N), 0); /* no growth below N */
    uint64_t *shadow = calloc(m.cap, sizeof *shadow);
    bool *used = calloc(m.cap, sizeof *used);
    assert_non_null(shadow);
    assert_non_null(used);
    uint64_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t key = x ^ (x >> 29);
        assert_non_null(cascade_idmap_upsert(&m, key, NULL));
        size_t s = (size_t)cascade_hash64(&key, sizeof key, seed) & (m.cap - 1);
        while (used[s] && shadow[s] != key)
            s = (s + 1) & (m.cap - 1);
        used[s] = true;
        shadow[s] = key;
    }
    for (size_t s = 0; s < m.cap; s++) {
        assert_int_equal(m.slots[s].used, used[s]);
        if (used[s])
            assert_int_equal(m.slots[s].key, shadow[s]);
    }
    free(shadow);
    free(used);
    cascade_idmap_release(&m);
}

/* The handler over real gRPC: a good call and an INVALID_ARGUMENT. */
static void test_rpc_handler(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    size_t n_methods = 0;
    const struct cascade_rpc_method *methods = cascade_recall_methods(&n_methods);
    assert_int_equal(n_methods, 1);
    assert_string_equal(methods[0].path, "/cascade.v1.Recall/Recall");
    struct cascade_rpc_server_opts so = {
        .listen_addr = "127.0.0.1:0", .threads = 1, .service_name = "cascade.v1.Recall"};
    cascade_rpc_server *srv =
        cascade_rpc_server_create(&so, methods, n_methods, f->recall, err, sizeof err);
    assert_non_null(srv);
    assert_int_equal(cascade_rpc_server_start(srv, err, sizeof err), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", cascade_rpc_server_port(srv));
    cascade_rpc_channel *ch = cascade_rpc_channel_create(target, 0);

    struct cascade_rpc_call call = {
        .channel = ch,
        .method = methods[0].path,
        .request = &seed_request(f->arena, "u1", 2, 1, (const char *[]){"hot"})->base,
        .response_type = methods[0].response_type,
        .deadline_ms = cascade_now_ms() + 10000};
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    const Cascade__V1__RecallResponse *resp = (const void *)call.response;
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 10);

    call.request = &seed_request(f->arena, "u1", 2, 1, (const char *[]){"nope"})->base;
    call.deadline_ms = cascade_now_ms() + 10000;
    assert_int_not_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    assert_int_equal(call.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(call.status_message, "unknown channel \"nope\" (known: " KNOWN ")");

    cascade_rpc_channel_destroy(ch);
    cascade_rpc_server_destroy(srv);
}

int main(void)
{
    cascade_rpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_channels_merge),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_disabled_channel),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_corrupt_record),
        cmocka_unit_test(test_batched_channels),
        cmocka_unit_test(test_batched_deadline),
        cmocka_unit_test(test_batched_validation),
        cmocka_unit_test(test_missing_generation_is_empty),
        cmocka_unit_test(test_generation_switch),
        cmocka_unit_test(test_concurrent_requests),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_decode_neighbours),
        cmocka_unit_test(test_itemcf_score_arrays),
        cmocka_unit_test(test_age_bucket),
        cmocka_unit_test(test_idmap_grows),
        cmocka_unit_test(test_idmap_layout_is_xxh3),
        cmocka_unit_test(test_rpc_handler),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    cascade_rpc_shutdown();
    return failed;
}
