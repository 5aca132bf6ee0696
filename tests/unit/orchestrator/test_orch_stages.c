/* The orchestrator in front of the real stage libraries: Recall, Filter,
 * PreRank, Rank and ReRank each served in-process by the real RPC runtime on
 * port 0, over one private redis-server (as their own tests run them), and
 * the served list checked against answers worked out by hand: the hot list
 * recalled, what the user consumed or disliked filtered, the rank
 * heuristic's smoothed CTR (clicks + 1) / (impressions + 20) ordering it,
 * re-rank at λ 1 keeping that order, and a second Recommend not repeating
 * what the first one showed (the filter's exposure Bloom filter in Redis). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../recall/recall_seed.h" /* NS "t", seed_zadd, seed_publish */
#include "filter.h"
#include "orchestrator.h"
#include "prerank.h"
#include "rank.h"
#include "recall.h"
#include "rerank.h"

#define ITEMS 40 /* items 1..ITEMS, all on the hot list */
#define USER "real-stages-user"

static struct {
    struct test_redis_fixture redis;
    cascade_config *cfg;
    cascade_recall *recall;
    cascade_filter *filter;
    cascade_prerank *prerank;
    cascade_rank *rank;
    cascade_rerank *rerank;
    cascade_rpc_server *servers[5];
    int ports[5];
    cascade_orch *orch;
    cascade_arena *arena;
    char model_dir[256]; /* empty: no model, the heuristics score */
} fx;

/* Item i: clicks i of 100 impressions (the rank heuristic's CTR grows with
 * i), its own category and author (no scatter rule can apply). */
static void seed_items(cascade_redis *r)
{
    char key[128];
    for (uint64_t i = 1; i <= ITEMS; i++) {
        cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
        rec.item_id = i;
        rec.author_id = 1000 + i;
        rec.category = (uint32_t)i;
        rec.has_stats = true;
        rec.stats.clicks = (uint32_t)i;
        rec.stats.impressions = 100;
        seed_ok(cascade_store_put_item(r, NS, &rec), r, "item");
        /* The hot list's own order is the reverse: rank must reorder it. */
        seed_zadd(r, seed_key(key, "hot", 1, NULL), (double)(ITEMS + 1 - i), i);
    }
    seed_publish(r, "hot", 1);
    redisReply *rep = NULL;
    seed_ok(cascade_redis_command(r, &rep, "SADD %s 40", cascade_key_user_consumed(key, NS, USER)),
            r, "consumed");
    freeReplyObject(rep);
    seed_ok(
        cascade_redis_command(r, &rep, "SADD %s 39", cascade_key_user_blocked_items(key, NS, USER)),
        r, "blocked");
    freeReplyObject(rep);
}

static int serve(int i, const struct cascade_rpc_method *methods, size_t n, void *service,
                 const char *name)
{
    char err[256];
    struct cascade_rpc_server_opts so = {
        .listen_addr = "127.0.0.1:0", .threads = 2, .service_name = name};
    fx.servers[i] = cascade_rpc_server_create(&so, methods, n, service, err, sizeof err);
    if (!fx.servers[i] || cascade_rpc_server_start(fx.servers[i], err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return -1;
    }
    fx.ports[i] = cascade_rpc_server_port(fx.servers[i]);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    char err[512], text[2048];
    size_t n;
    cascade_rpc_init();
    if (test_redis_fixture_start(&fx.redis) != 0 ||
        !test_tempdir(fx.model_dir, sizeof fx.model_dir))
        return -1;
    seed_items(fx.redis.conn);
    fx.cfg = cascade_config_parse("{\"prerank\": {\"model\": \"heuristic\"},"
                                  " \"rank\": {\"model\": \"heuristic\"},"
                                  " \"rerank\": {\"lambda\": 1.0}}",
                                  "stages.json", err, sizeof err);
    if (!fx.cfg ||
        !(fx.recall = cascade_recall_create(fx.cfg, fx.redis.pool, NS, NULL, err, sizeof err)) ||
        !(fx.filter = cascade_filter_create(fx.cfg, fx.redis.pool, NS, NULL, err, sizeof err)) ||
        !(fx.prerank =
              cascade_prerank_create(fx.cfg, fx.redis.pool, NS, NULL, NULL, err, sizeof err)) ||
        !(fx.rank = cascade_rank_create(fx.cfg, fx.redis.pool, NS, fx.model_dir, NULL, err,
                                        sizeof err)) ||
        !(fx.rerank = cascade_rerank_create(fx.cfg, err, sizeof err))) {
        fprintf(stderr, "stage: %s\n", err);
        return -1;
    }
    const struct cascade_rpc_method *m;
    if ((m = cascade_recall_methods(&n), serve(0, m, n, fx.recall, "cascade.v1.Recall")) ||
        (m = cascade_filter_methods(&n), serve(1, m, n, fx.filter, "cascade.v1.Filter")) ||
        (m = cascade_prerank_methods(&n), serve(2, m, n, fx.prerank, "cascade.v1.PreRank")) ||
        (m = cascade_rank_methods(&n), serve(3, m, n, fx.rank, "cascade.v1.Rank")) ||
        (m = cascade_rerank_methods(&n), serve(4, m, n, fx.rerank, "cascade.v1.ReRank")))
        return -1;
    /* One channel, no cold-start mix, no exploration slots, generous
     * budgets: the answer is the stages' work alone. */
    snprintf(text, sizeof text,
             "{\"orchestrator\": {\"endpoints\": {\"recall\": \"127.0.0.1:%d\", "
             "\"filter\": \"127.0.0.1:%d\", \"prerank\": \"127.0.0.1:%d\", "
             "\"rank\": \"127.0.0.1:%d\", \"rerank\": \"127.0.0.1:%d\"}, "
             "\"channels\": [{\"name\": \"hot\", \"weight\": 1, \"quota\": 100, "
             "\"timeout_ms\": 5000}], \"cold_start\": {\"channels\": []}, "
             "\"exploration\": {\"new_share\": 0}, \"deadline_ms\": 20000, "
             "\"exposure\": {\"timeout_ms\": 5000}, \"stages\": {"
             "\"filter\": {\"timeout_ms\": 5000}, \"prerank\": {\"timeout_ms\": 5000}, "
             "\"rank\": {\"timeout_ms\": 5000}, \"rerank\": {\"timeout_ms\": 5000}}}}",
             fx.ports[0], fx.ports[1], fx.ports[2], fx.ports[3], fx.ports[4]);
    cascade_config *ocfg = cascade_config_parse(text, "orch.json", err, sizeof err);
    if (!ocfg)
        return fprintf(stderr, "config: %s\n", err), -1;
    fx.orch = cascade_orch_create(ocfg, fx.redis.pool, NS, NULL, err, sizeof err);
    cascade_config_destroy(ocfg);
    if (!fx.orch)
        return fprintf(stderr, "orchestrator: %s\n", err), -1;
    fx.arena = cascade_arena_create(0);
    return fx.arena ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cascade_orch_destroy(fx.orch);
    for (int i = 0; i < 5; i++)
        cascade_rpc_server_destroy(fx.servers[i]);
    cascade_rerank_destroy(fx.rerank);
    cascade_rank_destroy(fx.rank);
    cascade_prerank_destroy(fx.prerank);
    cascade_filter_destroy(fx.filter);
    cascade_recall_destroy(fx.recall);
    cascade_config_destroy(fx.cfg);
    cascade_arena_destroy(fx.arena);
    test_redis_fixture_stop(&fx.redis);
    test_rmdir(fx.model_dir);
    cascade_rpc_shutdown();
    return 0;
}

static Cascade__V1__RecommendResponse *recommend(const char *user, uint32_t count)
{
    char err[512] = "";
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    Cascade__V1__RecommendResponse *resp = NULL;
    u.user_id = (char *)user;
    req.user = &u;
    req.count = count;
    struct cascade_orch_call call = {.arena = fx.arena,
                                     .deadline_ms = INT64_MAX,
                                     .peer = "ipv4:127.0.0.1:40000",
                                     .err = err,
                                     .errlen = sizeof err};
    int rc = cascade_orch_recommend(fx.orch, &call, &req, &resp);
    if (rc != 0)
        fail_msg("recommend: %s", err);
    if (resp->degraded)
        fail_msg("degraded: %s", resp->n_degraded_reasons ? resp->degraded_reasons[0] : "?");
    return resp;
}

static void assert_served(const Cascade__V1__RecommendResponse *r, const uint64_t *want, size_t n)
{
    assert_int_equal(r->n_items, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(r->items[i]->item_id, want[i]);
}

static void test_served_list_from_the_real_stages(void **state)
{
    (void)state;
    /* The highest CTRs are 40 (consumed) and 39 (disliked): filtered. Then
     * 38 down, in CTR order (the hot list's order is the reverse). */
    const uint64_t first[] = {38, 37, 36, 35, 34};
    assert_served(recommend(USER, 5), first, 5);
    /* Shown once: never again for this user. */
    const uint64_t second[] = {33, 32, 31, 30, 29};
    assert_served(recommend(USER, 5), second, 5);
    /* Another user has no history, filter or exposure: the top CTRs. */
    const uint64_t other[] = {40, 39, 38};
    assert_served(recommend("another-user", 3), other, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_list_from_the_real_stages),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
