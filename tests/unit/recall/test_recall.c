/* Tests of the Recall stage library against a private redis-server: the hot
 * list (order, quota), ItemCF on a hand-computed example, channel merge,
 * validation messages, Redis and deadline failures, and the RPC handler
 * through a real in-process gRPC server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "idmap.h"
#include "recall.h"
#include "rpc.h"
#include "store.h"
#include "messages.h"
#include "support.h"

#define NS "t"

struct fixture {
    struct test_redis_fixture redis;
    cascade_recall *recall;
    cascade_arena *arena;
};

static cascade_recall *make_recall(cascade_redis_pool *pool, const char *json)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    assert_non_null(cfg);
    cascade_recall *r = cascade_recall_create(cfg, pool, NS, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!r)
        fail_msg("cascade_recall_create: %s", err);
    return r;
}

static void put_neighbours(cascade_redis *r, uint64_t item, const uint64_t *ids,
                           const float *scores, size_t n)
{
    cascade_v1_NeighbourList l = cascade_v1_NeighbourList_init_zero;
    uint8_t buf[4096];
    size_t len = 0;
    char key[CASCADE_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        l.neighbours[i].item_id = ids[i];
        l.neighbours[i].score = scores[i];
    }
    l.neighbours_count = (pb_size_t)n;
    assert_int_equal(
        cascade_record_encode(cascade_v1_NeighbourList_fields, &l, buf, sizeof buf, &len), 0);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "SET %s %b",
                                           cascade_key_i2i(key, NS, "itemcf", item), buf, len),
                     0);
    freeReplyObject(rep);
}

static void push(cascade_redis *r, const char *user, uint64_t item, uint32_t type, float weight)
{
    cascade_v1_Interaction it = cascade_v1_Interaction_init_zero;
    it.item_id = item;
    it.type = type;
    it.time_s = 1700000000;
    it.weight = weight;
    assert_int_equal(cascade_store_push_interaction(r, NS, user, &it, 100), 0);
}

/* Hot list: items 1..10 with score 10·id. ItemCF: user "u1" clicked 100
 * (weight 1) and liked 200 (weight 2); the neighbour lists are below. */
static void seed(cascade_redis *r)
{
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    for (uint64_t id = 1; id <= 10; id++) {
        assert_int_equal(cascade_redis_command(r, &rep, "ZADD %s %f %llu", cascade_key_hot(key, NS),
                                               10.0 * (double)id, (unsigned long long)id),
                         0);
        freeReplyObject(rep);
    }
    push(r, "u1", 100, 2, 1.0f);
    push(r, "u1", 200, 3, 2.0f);
    put_neighbours(r, 100, (uint64_t[]){200, 300, 400, 600}, (float[]){0.9f, 0.5f, 0.4f, 0.35f}, 4);
    put_neighbours(r, 200, (uint64_t[]){100, 500, 300}, (float[]){0.8f, 0.3f, 0.1f}, 3);
    put_neighbours(r, 300, (uint64_t[]){7}, (float[]){0.9f}, 1); /* not in u1's history */
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    seed(f.redis.conn);
    /* k = 3 neighbours per interaction so item 600 (4th of 100's list) is cut. */
    f.recall = make_recall(f.redis.pool, "{\"recall\": {\"itemcf\": {\"neighbours\": 3}}}");
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

/* A request for user `uid` (NULL = no user submessage). Arena-allocated. */
static Cascade__V1__RecallRequest *request(cascade_arena *a, const char *uid, uint32_t quota,
                                           size_t n, const char **channels)
{
    Cascade__V1__RecallRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__recall_request__init(req);
    req->user = test_user_context(a, uid, 0);
    req->quota = quota;
    req->n_channels = n;
    req->channels = cascade_arena_calloc(a, n + 1, sizeof *req->channels);
    for (size_t i = 0; i < n; i++)
        req->channels[i] = cascade_arena_strdup(a, channels[i]);
    return req;
}

static int run(struct fixture *f, Cascade__V1__RecallRequest *req,
               Cascade__V1__RecallResponse **resp, char *err, size_t errlen)
{
    return cascade_recall_run(f->recall, f->arena, INT64_MAX, req, resp, err, errlen);
}

static void test_hot_order_and_quota(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(
        run(f, request(f->arena, "u1", 3, 1, (const char *[]){"hot"}), &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 3);
    for (size_t i = 0; i < 3; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        assert_int_equal(c->item_id, 10 - i);
        assert_int_equal(c->n_channels, 1);
        assert_string_equal(c->channels[0]->channel, "hot");
        assert_int_equal(c->channels[0]->rank, i);
        assert_float_equal(c->channels[0]->score, 10.0f * (float)(10 - i), 1e-4);
    }
    assert_int_equal(resp->n_channels, 1);
    assert_string_equal(resp->channels[0]->channel, "hot");
    assert_int_equal(resp->channels[0]->count, 3);

    /* A quota larger than the list returns the whole list. */
    assert_int_equal(
        run(f, request(f->arena, "u1", 50, 1, (const char *[]){"hot"}), &resp, err, sizeof err), 0);
    assert_int_equal(resp->n_candidates, 10);
    assert_int_equal(resp->candidates[9]->item_id, 1);
}

static void test_itemcf_hand_example(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(
        run(f, request(f->arena, "u1", 10, 1, (const char *[]){"itemcf"}), &resp, err, sizeof err),
        0);
    /* 300: 1·0.5 + 2·0.1 = 0.7; 500: 2·0.3 = 0.6; 400: 1·0.4; 600 is beyond
     * k = 3; 100 and 200 are the user's own items. */
    assert_int_equal(resp->n_candidates, 3);
    const uint64_t want_id[] = {300, 500, 400};
    const float want_score[] = {0.7f, 0.6f, 0.4f};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(resp->candidates[i]->item_id, want_id[i]);
        assert_string_equal(resp->candidates[i]->channels[0]->channel, "itemcf");
        assert_float_equal(resp->candidates[i]->channels[0]->score, want_score[i], 1e-5);
        assert_int_equal(resp->candidates[i]->channels[0]->rank, i);
    }
    assert_int_equal(resp->channels[0]->count, 3);

    /* Quota cuts the tail. */
    assert_int_equal(
        run(f, request(f->arena, "u1", 2, 1, (const char *[]){"itemcf"}), &resp, err, sizeof err),
        0);
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[1]->item_id, 500);
}

static void test_itemcf_no_history_is_empty(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f, request(f->arena, "nobody", 10, 1, (const char *[]){"itemcf"}), &resp,
                         err, sizeof err),
                     0);
    assert_int_equal(resp->n_candidates, 0);
    assert_int_equal(resp->n_channels, 1);
    assert_int_equal(resp->channels[0]->count, 0);
}

static void test_two_channels_merge(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    char key[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    /* Make 300 hot as well: it must come back once, with both hits. */
    assert_int_equal(
        cascade_redis_command(f->redis.conn, &rep, "ZADD %s 1000 300", cascade_key_hot(key, NS)),
        0);
    freeReplyObject(rep);
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f, request(f->arena, "u1", 5, 2, (const char *[]){"hot", "itemcf"}), &resp,
                         err, sizeof err),
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
        }
    }
    assert_int_equal(found300, 1);
    assert_int_equal(resp->n_candidates, 5 + 3 - 1);
    assert_int_equal(resp->n_channels, 2);
    assert_int_equal(resp->channels[0]->count, 5);
    assert_int_equal(resp->channels[1]->count, 3);
    assert_int_equal(cascade_redis_command(f->redis.conn, &rep, "ZREM %s 300", key), 0);
    freeReplyObject(rep);
}

static void expect_invalid(struct fixture *f, Cascade__V1__RecallRequest *req, int code,
                           const char *message)
{
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(run(f, req, &resp, err, sizeof err), code);
    assert_string_equal(err, message);
}

static void test_validation(void **state)
{
    struct fixture *f = *state;
    cascade_arena *a = f->arena;
    expect_invalid(f, request(a, "u1", 10, 1, (const char *[]){"foo"}), CASCADE_EINVAL,
                   "unknown channel \"foo\" (known: hot, itemcf)");
    expect_invalid(f, request(a, "", 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is empty");
    expect_invalid(f, request(a, NULL, 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is empty");
    char long_id[66];
    memset(long_id, 'x', 65);
    long_id[65] = '\0';
    expect_invalid(f, request(a, long_id, 10, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "user.user_id is longer than 64 bytes");
    long_id[64] = '\0'; /* 64 bytes is fine */
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(
        run(f, request(a, long_id, 10, 1, (const char *[]){"hot"}), &resp, err, sizeof err), 0);
    expect_invalid(f, request(a, "u1", 0, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "quota 0 out of range 1..5000");
    expect_invalid(f, request(a, "u1", 5001, 1, (const char *[]){"hot"}), CASCADE_EINVAL,
                   "quota 5001 out of range 1..5000");
    expect_invalid(f, request(a, "u1", 10, 0, NULL), CASCADE_EINVAL,
                   "channels is empty (known: hot, itemcf)");
    expect_invalid(f, request(a, "u1", 10, 2, (const char *[]){"hot", "hot"}), CASCADE_EINVAL,
                   "channel \"hot\" is requested twice");
}

static void test_disabled_channel(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r =
        make_recall(f->redis.pool, "{\"recall\": {\"channels\": {\"hot\": {\"enabled\": false}}}}");
    char err[256] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    assert_int_equal(cascade_recall_run(r, f->arena, INT64_MAX,
                                        request(f->arena, "u1", 3, 1, (const char *[]){"hot"}),
                                        &resp, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "recall.channels.hot.enabled"));
    cascade_recall_destroy(r);
}

static void test_bad_config(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_config *cfg =
        cascade_config_parse("{\"recall\": {\"max_quota\": 0}}", "test", err, sizeof err);
    assert_non_null(cfg);
    assert_null(cascade_recall_create(cfg, NULL, NS, err, sizeof err));
    assert_non_null(strstr(err, "recall.max_quota"));
    cascade_config_destroy(cfg);
}

static void test_redis_down_is_unavailable(void **state)
{
    struct fixture *f = *state;
    cascade_redis_pool *dead = test_redis_dead_pool();
    cascade_recall *r = make_recall(dead, "{}");
    const char *names[] = {"hot", "itemcf"};
    for (size_t i = 0; i < 2; i++) {
        char err[256] = "";
        Cascade__V1__RecallResponse *resp = NULL;
        assert_int_equal(cascade_recall_run(r, f->arena, INT64_MAX,
                                            request(f->arena, "u1", 3, 1, &names[i]), &resp, err,
                                            sizeof err),
                         CASCADE_EUNAVAILABLE);
        assert_non_null(strstr(err, names[i]));
        assert_non_null(strstr(err, "127.0.0.1")); /* the redis error names the server */
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
                                        request(f->arena, "u1", 3, 1, (const char *[]){"hot"}),
                                        &resp, err, sizeof err),
                     CASCADE_ETIMEDOUT);
}

static void test_itemcf_score_arrays(void **state)
{
    struct fixture *f = *state;
    cascade_v1_NeighbourList lists[3];
    memset(lists, 0, sizeof lists);
    lists[0].neighbours_count = 2; /* item 1: 3 (0.5), 4 (0.5) */
    lists[0].neighbours[0] = (cascade_v1_Neighbour){3, 0.5f};
    lists[0].neighbours[1] = (cascade_v1_Neighbour){4, 0.5f};
    lists[1].neighbours_count = 1; /* item 2: 1 (own item, excluded) */
    lists[1].neighbours[0] = (cascade_v1_Neighbour){1, 0.9f};
    lists[2].neighbours_count = 1; /* item 9: absent list (found = false) */
    lists[2].neighbours[0] = (cascade_v1_Neighbour){5, 9.0f};
    const uint64_t src[] = {1, 2, 9};
    const float w[] = {2.0f, 1.0f, 1.0f};
    const bool found[] = {true, true, false};
    struct cascade_recall_hits hits;
    assert_int_equal(cascade_recall_itemcf_score(src, w, 3, lists, found, 50, 10, f->arena, &hits),
                     0);
    /* 3 and 4 tie at 1.0: the smaller id comes first. */
    assert_int_equal(hits.count, 2);
    assert_int_equal(hits.ids[0], 3);
    assert_int_equal(hits.ids[1], 4);
    assert_float_equal(hits.scores[0], 1.0f, 1e-6);
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
        .request = &request(f->arena, "u1", 2, 1, (const char *[]){"hot"})->base,
        .response_type = methods[0].response_type,
        .deadline_ms = cascade_now_ms() + 10000};
    assert_int_equal(cascade_rpc_call_unary(&call, f->arena), 0);
    const Cascade__V1__RecallResponse *resp = (const void *)call.response;
    assert_int_equal(resp->n_candidates, 2);
    assert_int_equal(resp->candidates[0]->item_id, 10);

    call.request = &request(f->arena, "", 2, 1, (const char *[]){"hot"})->base;
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
        cmocka_unit_test(test_hot_order_and_quota),
        cmocka_unit_test(test_itemcf_hand_example),
        cmocka_unit_test(test_itemcf_no_history_is_empty),
        cmocka_unit_test(test_two_channels_merge),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_disabled_channel),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_redis_down_is_unavailable),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_itemcf_score_arrays),
        cmocka_unit_test(test_idmap_grows),
        cmocka_unit_test(test_rpc_handler),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    cascade_rpc_shutdown();
    return failed;
}
