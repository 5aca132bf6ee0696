/* Unit tests of the orchestrator's config parsing: defaults, channel lists,
 * endpoint names and the per-channel override used by scripts/stack.sh, and
 * error messages that name the offending key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "orch_config.h"

static int parse_text(const char *text, struct cascade_orch_config *out, char *err, size_t len)
{
    char perr[256];
    cascade_config *cfg = cascade_config_parse(text, "test.json", perr, sizeof perr);
    assert_non_null(cfg);
    int rc = cascade_orch_config_parse(cfg, out, err, len);
    cascade_config_destroy(cfg);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[256] = "";
    assert_int_equal(parse_text("{}", &c, err, sizeof err), 0);
    assert_int_equal(c.n_channels, 2);
    assert_string_equal(c.channels[0].name, "hot");
    assert_string_equal(c.channels[1].name, "itemcf");
    assert_string_equal(c.channels[1].endpoint, "127.0.0.1:50051");
    assert_string_equal(c.filter.endpoint, "127.0.0.1:50052");
    assert_string_equal(c.prerank.endpoint, "127.0.0.1:50053");
    assert_string_equal(c.rank.endpoint, "127.0.0.1:50054");
    assert_string_equal(c.rerank.endpoint, "127.0.0.1:50055");
    assert_int_equal(c.merge_max, 2000);
    assert_int_equal(c.prerank.keep, 300);
    assert_true(c.filter.enabled && c.rerank.enabled);
    /* Cold start is off without a cold-start mix; exploration and cache on. */
    assert_int_equal(c.n_cold_channels, 0);
    assert_int_equal(c.cold_min_interactions, 5);
    assert_float_equal(c.explore_share, 0.05, 0);
    assert_float_equal(c.explore_position, 0.8, 0);
    assert_float_equal(c.explore_max_rank_share, 0.5, 0);
    assert_int_equal(c.explore_candidates, 20);
    assert_string_equal(c.explore_channel, "new");
    assert_true(c.cache_enabled);
    assert_int_equal(c.cache_capacity, 200);
    assert_int_equal(c.cache_ttl_s, 7 * 86400);
    assert_true(c.hardneg_enabled);
    assert_int_equal(c.hardneg_per_request, 20);
    assert_int_equal(c.hardneg_cap, 200);
    assert_int_equal(c.hardneg_ttl_s, 30 * 86400);
    /* The debug trace: served to loopback callers, no token. */
    assert_true(c.debug_enabled);
    assert_true(c.debug_loopback);
    assert_string_equal(c.debug_token, "");
}

/* debug.{enabled,loopback,token}: parsed, and a token that cannot travel in
 * metadata (space, control character) or is too long is refused by name. */
static void test_debug(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[512] = "", text[600], big[300];
    assert_int_equal(parse_text("{\"orchestrator\": {\"debug\": {\"enabled\": false, "
                                "\"loopback\": false, \"token\": \"abc-123\"}}}",
                                &c, err, sizeof err),
                     0);
    assert_false(c.debug_enabled);
    assert_false(c.debug_loopback);
    assert_string_equal(c.debug_token, "abc-123");
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"debug\": {\"token\": \"a b\"}}}", &c, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "orchestrator.debug.token"));
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"debug\": {\"token\": \"a\\nb\"}}}", &c, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "orchestrator.debug.token"));
    memset(big, 'x', 257);
    big[257] = '\0';
    snprintf(text, sizeof text, "{\"orchestrator\": {\"debug\": {\"token\": \"%s\"}}}", big);
    assert_int_equal(parse_text(text, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "orchestrator.debug.token: at most 256 bytes"));
    big[256] = '\0';
    snprintf(text, sizeof text, "{\"orchestrator\": {\"debug\": {\"token\": \"%s\"}}}", big);
    assert_int_equal(parse_text(text, &c, err, sizeof err), 0);
    assert_int_equal(strlen(c.debug_token), 256);
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"debug\": {\"enabled\": 1}}}", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "orchestrator.debug.enabled"));
}

static void test_cold_start_exploration_cache(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[256] = "";
    const char *text = "{\"orchestrator\": {"
                       "  \"endpoints\": {\"recall_geo\": \"10.0.0.7:7007\"},"
                       "  \"cold_start\": {\"min_interactions\": 3, \"channels\": ["
                       "    {\"name\": \"hot\", \"weight\": 0.5, \"quota\": 300},"
                       "    {\"name\": \"geo\"}, {\"name\": \"city\", \"enabled\": false}]},"
                       "  \"exploration\": {\"new_share\": 0.2, \"channel\": \"fresh\","
                       "    \"position\": 0.25, \"max_rank_share\": 0.3, \"candidates\": 7},"
                       "  \"cache\": {\"capacity\": 50, \"ttl_s\": 0, \"enabled\": false}}}";
    assert_int_equal(parse_text(text, &c, err, sizeof err), 0);
    assert_int_equal(c.n_cold_channels, 2);
    assert_string_equal(c.cold_channels[0].name, "hot");
    assert_float_equal(c.cold_channels[0].weight, 0.5, 0);
    assert_int_equal(c.cold_channels[0].quota, 300);
    assert_string_equal(c.cold_channels[0].endpoint, "127.0.0.1:50051");
    assert_string_equal(c.cold_channels[1].endpoint, "10.0.0.7:7007"); /* recall_geo override */
    assert_int_equal(c.cold_min_interactions, 3);
    assert_int_equal(c.n_channels, 2); /* the normal list keeps its defaults */
    assert_float_equal(c.explore_share, 0.2, 0);
    assert_float_equal(c.explore_position, 0.25, 0);
    assert_float_equal(c.explore_max_rank_share, 0.3, 0);
    assert_int_equal(c.explore_candidates, 7);
    assert_string_equal(c.explore_channel, "fresh");
    assert_false(c.cache_enabled);
    assert_int_equal(c.cache_capacity, 50);
    assert_int_equal(c.cache_ttl_s, 0);

    assert_int_equal(parse_text("{\"orchestrator\": {\"cold_start\": {\"channels\": "
                                "[{\"name\": \"hot\", \"quota\": 0}]}}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.cold_start.channels[0].quota"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"exploration\": {\"new_share\": 1.5}}}", &c,
                                err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.exploration.new_share"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"exploration\": {\"position\": -0.1}}}", &c,
                                err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.exploration.position"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"exploration\": {\"candidates\": 0}}}", &c,
                                err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.exploration.candidates"));
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"cache\": {\"capacity\": 0}}}", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "orchestrator.cache.capacity"));

    assert_int_equal(parse_text("{\"orchestrator\": {\"hard_negatives\": {\"enabled\": false, "
                                "\"per_request\": 7, \"cap\": 70, \"ttl_s\": 0}}}",
                                &c, err, sizeof err),
                     0);
    assert_false(c.hardneg_enabled);
    assert_int_equal(c.hardneg_per_request, 7);
    assert_int_equal(c.hardneg_cap, 70);
    assert_int_equal(c.hardneg_ttl_s, 0);
    assert_int_equal(parse_text("{\"orchestrator\": {\"hard_negatives\": {\"per_request\": 0}}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.hard_negatives.per_request"));
}

static void test_channels_and_endpoints(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[256] = "";
    const char *text =
        "{\"orchestrator\": {"
        "  \"endpoints\": {\"recall\": \"10.0.0.1:7001\", \"filter\": \"10.0.0.2:7002\","
        "                  \"side\": \"10.0.0.9:7009\", \"recall_itemcf\": \"10.0.0.3:7003\"},"
        "  \"channels\": ["
        "    {\"name\": \"hot\", \"weight\": 0.5, \"quota\": 100, \"timeout_ms\": 40},"
        "    {\"name\": \"itemcf\", \"endpoint\": \"side\"},"
        "    {\"name\": \"geo\", \"endpoint\": \"side\"},"
        "    {\"name\": \"off\", \"enabled\": false},"
        "    {\"name\": \"direct\", \"endpoint\": \"127.0.0.1:9\"}],"
        "  \"stages\": {\"rank\": {\"timeout_ms\": 80, \"keep\": 50}, \"rerank\": {\"enabled\": "
        "false}},"
        "  \"merge_max\": 1500}}";
    assert_int_equal(parse_text(text, &c, err, sizeof err), 0);
    assert_int_equal(c.n_channels, 4);
    assert_string_equal(c.channels[0].endpoint, "10.0.0.1:7001");
    assert_float_equal(c.channels[0].weight, 0.5, 0);
    assert_int_equal(c.channels[0].quota, 100);
    assert_int_equal(c.channels[0].timeout_ms, 40);
    /* recall_itemcf overrides the channel's own endpoint. */
    assert_string_equal(c.channels[1].endpoint, "10.0.0.3:7003");
    assert_string_equal(c.channels[2].endpoint, "10.0.0.9:7009");
    assert_string_equal(c.channels[3].name, "direct");
    assert_string_equal(c.channels[3].endpoint, "127.0.0.1:9");
    assert_null(cascade_orch_config_channel(&c, "off"));
    assert_non_null(cascade_orch_config_channel(&c, "geo"));
    assert_string_equal(c.filter.endpoint, "10.0.0.2:7002");
    assert_int_equal(c.rank.timeout_ms, 80);
    assert_int_equal(c.rank.keep, 50);
    assert_false(c.rerank.enabled);
    assert_int_equal(c.merge_max, 1500);
}

static void test_errors_name_the_key(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[512] = "";
    assert_int_equal(parse_text("{\"orchestrator\": {\"channels\": [{\"name\": \"a\"},"
                                "{\"name\": \"b\", \"weight\": -1}]}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.channels[1].weight"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"channels\": [{\"name\": \"a\", "
                                "\"endpoint\": \"nowhere\"}]}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "nowhere"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"channels\": [{\"name\": \"a\"},"
                                "{\"name\": \"a\"}]}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "duplicate channel \"a\""));
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"channels\": {\"name\": \"a\"}}}", &c, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "orchestrator.channels"));
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"channels\": [{\"weight\": 1}]}}", &c, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "orchestrator.channels[0].name"));
}

/* Stage channels reconnect fast by default; the settings are configurable
 * and checked. */
static void test_reconnect_keys(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[512] = "";
    assert_int_equal(parse_text("{}", &c, err, sizeof err), 0);
    assert_int_equal(c.reconnect_initial_backoff_ms, 100);
    assert_int_equal(c.reconnect_max_backoff_ms, 800);
    assert_int_equal(c.connect_timeout_ms, 1000);
    assert_int_equal(parse_text("{\"orchestrator\": {\"reconnect\": {\"initial_backoff_ms\": 50,"
                                "\"max_backoff_ms\": 400, \"connect_timeout_ms\": 300}}}",
                                &c, err, sizeof err),
                     0);
    assert_int_equal(c.reconnect_initial_backoff_ms, 50);
    assert_int_equal(c.reconnect_max_backoff_ms, 400);
    assert_int_equal(c.connect_timeout_ms, 300);
    assert_int_equal(parse_text("{\"orchestrator\": {\"reconnect\": {\"initial_backoff_ms\": 500,"
                                "\"max_backoff_ms\": 200}}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.reconnect.max_backoff_ms"));
    assert_int_equal(parse_text("{\"orchestrator\": {\"reconnect\": {\"connect_timeout_ms\": 0}}}",
                                &c, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "orchestrator.reconnect.connect_timeout_ms"));
}

/* orchestrator.slots: item slots and exploration positions, in order; bad
 * entries name the entry and field. */
static void test_slots(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[512] = "";
    assert_int_equal(parse_text("{}", &c, err, sizeof err), 0);
    assert_int_equal(c.n_slots, 0);
    assert_int_equal(parse_text("{\"orchestrator\": {\"slots\": ["
                                "{\"position\": 0, \"item_id\": 123, \"source\": \"ops:x\"},"
                                "{\"position\": 8, \"source\": \"exploration\"},"
                                "{\"position\": 0, \"source\": \"exploration\"}]}}",
                                &c, err, sizeof err),
                     0);
    assert_int_equal(c.n_slots, 3);
    assert_int_equal(c.slots[0].position, 0);
    assert_int_equal(c.slots[0].item_id, 123);
    assert_string_equal(c.slots[0].source, "ops:x");
    assert_int_equal(c.slots[1].position, 8);
    assert_int_equal(c.slots[1].item_id, 0);
    assert_string_equal(c.slots[1].source, "exploration");
    const struct {
        const char *slots, *want;
    } bad[] = {
        {"{\"position\": 1, \"source\": \"ads\"}",
         "orchestrator.slots[0].item_id: expected a positive"},
        {"{\"position\": 1, \"item_id\": 5, \"source\": \"exploration\"}",
         "orchestrator.slots[0].item_id: expected none for an exploration slot"},
        {"{\"item_id\": 5, \"source\": \"ads\"}", "orchestrator.slots[0].position"},
        {"{\"position\": 200, \"item_id\": 5, \"source\": \"ads\"}",
         "orchestrator.slots[0].position"},
        {"{\"position\": 1.5, \"item_id\": 5, \"source\": \"ads\"}",
         "orchestrator.slots[0].position"},
        {"{\"position\": 1, \"item_id\": 5, \"source\": \"a b\"}", "orchestrator.slots[0].source"},
        {"{\"position\": 1, \"item_id\": 5}", "orchestrator.slots[0].source"},
        {"{\"position\": 1, \"item_id\": 5, \"source\": \"a\"}, "
         "{\"position\": 1, \"item_id\": 6, \"source\": \"b\"}",
         "orchestrator.slots[1].position"},
        {"{\"position\": 1, \"item_id\": 5, \"source\": \"a\"}, "
         "{\"position\": 2, \"item_id\": 5, \"source\": \"b\"}",
         "orchestrator.slots[1].item_id"},
        {"7", "orchestrator.slots[0]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"orchestrator\": {\"slots\": [%s]}}", bad[i].slots);
        err[0] = '\0';
        assert_int_equal(parse_text(text, &c, err, sizeof err), -1);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].slots, err, bad[i].want);
    }
    assert_int_equal(parse_text("{\"orchestrator\": {\"slots\": {}}}", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "orchestrator.slots: expected a list of at most 16 slots"));
}

/* Each stage keeps back the min_ms of the enabled stages after it (and the
 * exposure reservation's, when the filter runs). */
static void test_deadline_reserves(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[256] = "";
    assert_int_equal(parse_text("{}", &c, err, sizeof err), 0);
    assert_int_equal(c.rerank.reserve_ms, 20);
    assert_int_equal(c.rank.reserve_ms, 40);
    assert_int_equal(c.prerank.reserve_ms, 60);
    assert_int_equal(c.filter.reserve_ms, 80);
    assert_int_equal(c.recall_reserve_ms, 100);
    assert_int_equal(parse_text("{\"orchestrator\": {\"exposure\": {\"min_ms\": 7},"
                                " \"stages\": {\"rerank\": {\"enabled\": false},"
                                " \"rank\": {\"min_ms\": 50}, \"prerank\": {\"min_ms\": 3}}}}",
                                &c, err, sizeof err),
                     0);
    assert_int_equal(c.rank.reserve_ms, 7); /* rerank disabled: only exposure */
    assert_int_equal(c.prerank.reserve_ms, 57);
    assert_int_equal(c.filter.reserve_ms, 60);
    assert_int_equal(c.recall_reserve_ms, 80);
    /* Without the filter there is no exposure reservation to keep time for. */
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"stages\": {\"filter\": {\"enabled\": false}}}}", &c, err,
                   sizeof err),
        0);
    assert_int_equal(c.rerank.reserve_ms, 0);
    assert_int_equal(c.recall_reserve_ms, 60);
    assert_int_equal(parse_text("{\"orchestrator\": {\"stages\": {\"rank\": {\"min_ms\": -1}}}}",
                                &c, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "orchestrator.stages.rank.min_ms"));
}

/* A stage's deadline: its own budget, cut so the later stages keep their
 * reserve, never below its minimum, never past the request's deadline. */
static void test_stage_deadline(void **state)
{
    (void)state;
    /* Plenty of time: the stage's own budget. */
    assert_int_equal(cascade_orch_stage_deadline(1000, 5000, 300, 20, 40), 1300);
    /* A 500 ms request deadline and a 500 ms stage budget: 40 ms stay for the rest. */
    assert_int_equal(cascade_orch_stage_deadline(1000, 1500, 500, 20, 40), 1460);
    /* Less left than the reserve: the stage still gets its minimum... */
    assert_int_equal(cascade_orch_stage_deadline(1000, 1030, 500, 20, 40), 1020);
    /* ...but never past the request's deadline. */
    assert_int_equal(cascade_orch_stage_deadline(1000, 1010, 500, 20, 40), 1010);
    /* No reserve: the request's deadline bounds the budget. */
    assert_int_equal(cascade_orch_stage_deadline(1000, 1200, 500, 0, 0), 1200);
}

/* A stage endpoint given as a group of {track, endpoint, weight}: the
 * tracks resolve like any endpoint, and a user's track follows the weights
 * and the salt, the same on every call. */
static void test_endpoint_group(void **state)
{
    (void)state;
    struct cascade_orch_config c;
    char err[512] = "";
    assert_int_equal(
        parse_text("{\"orchestrator\": {\"endpoints\": {\"rank_canary\": \"127.0.0.1:7001\"},"
                   " \"stages\": {\"rank\": {\"endpoint\": ["
                   "{\"track\": \"stable\", \"endpoint\": \"rank\", \"weight\": 90},"
                   "{\"track\": \"canary\", \"endpoint\": \"rank_canary\", \"weight\": 10}]}}}}",
                   &c, err, sizeof err),
        0);
    assert_int_equal(c.rank.n_tracks, 2);
    assert_string_equal(c.rank.tracks[0].name, "stable");
    assert_string_equal(c.rank.tracks[0].endpoint, "127.0.0.1:50054");
    assert_string_equal(c.rank.tracks[1].endpoint, "127.0.0.1:7001");
    assert_string_equal(c.rank.endpoint, "127.0.0.1:50054");
    assert_string_equal(c.rank.track_salt, "rank-track");
    assert_int_equal(c.prerank.n_tracks, 0);

    size_t canary = 0, moved = 0, users = 20000;
    struct cascade_orch_stage_cfg salted = c.rank;
    snprintf(salted.track_salt, sizeof salted.track_salt, "another-salt");
    for (size_t u = 0; u < users; u++) {
        char user[32];
        snprintf(user, sizeof user, "user-%zu", u);
        size_t t = cascade_orch_config_track(&c.rank, user);
        assert_true(t < 2);
        assert_int_equal(cascade_orch_config_track(&c.rank, user), t); /* sticky */
        canary += t == 1;
        moved += cascade_orch_config_track(&salted, user) != t;
    }
    /* 10% by weight: 2000 expected, binomial sd ~42. */
    assert_in_range(canary, 1800, 2200);
    /* Another salt reshuffles: about 2·0.9·0.1 = 18% of users change track. */
    assert_in_range(moved, 3200, 4000);
    assert_int_equal(cascade_orch_config_track(&c.prerank, "user-1"), 0);

    const char *bad[][2] = {
        {"[]", "an endpoint group needs 1..4 tracks"},
        {"[{\"track\": \"a\", \"endpoint\": \"rank\", \"weight\": 0}]",
         "endpoint[0]: expected {\"track\""},
        {"[{\"track\": \"Bad\", \"endpoint\": \"rank\", \"weight\": 1}]", "endpoint[0]: expected"},
        {"[{\"track\": \"a\", \"endpoint\": \"rank\", \"weight\": 1},"
         "{\"track\": \"a\", \"endpoint\": \"rank\", \"weight\": 1}]",
         "endpoint[1]: track \"a\" named twice"},
        {"[{\"track\": \"a\", \"endpoint\": \"nowhere\", \"weight\": 1}]",
         "endpoint \"nowhere\" is neither host:port (or unix:/path) nor a name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"orchestrator\": {\"stages\": {\"rank\": {\"endpoint\": %s}}}}", bad[i][0]);
        assert_int_equal(parse_text(text, &c, err, sizeof err), CASCADE_EINVAL);
        if (!strstr(err, bad[i][1]))
            fail_msg("expected \"%s\" in \"%s\"", bad[i][1], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_channels_and_endpoints),
        cmocka_unit_test(test_cold_start_exploration_cache),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_reconnect_keys),
        cmocka_unit_test(test_debug),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_deadline_reserves),
        cmocka_unit_test(test_stage_deadline),
        cmocka_unit_test(test_endpoint_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
