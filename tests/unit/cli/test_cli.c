/* Unit tests of cascade-cli's library: argument parsing (defaults, event
 * types from the .proto enum, usage errors) and the Recommend table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "support.h"

#include "cli.h"

static int parse_adapter(int argc, char **argv, void *opts, FILE *out, FILE *err)
{
    return cascade_cli_parse(argc, argv, opts, out, err);
}

/* Parse a NULL-terminated argument list; stderr text goes to err_text. */
static int parse(struct cascade_cli_args *a, char *err_text, size_t len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = test_parse_argv(parse_adapter, a, "cascade-cli", err_text, len, ap);
    va_end(ap);
    return rc;
}

static void test_recommend_args(void **state)
{
    (void)state;
    struct cascade_cli_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof err, "recommend", "--user", "u7", NULL), 0);
    assert_int_equal(a.command, CASCADE_CLI_RECOMMEND);
    assert_string_equal(a.user, "u7");
    assert_int_equal(a.count, 10);
    assert_string_equal(a.addr, "127.0.0.1:50050");
    assert_false(a.debug);
    assert_int_equal(parse(&a, err, sizeof err, "recommend", "--count", "3", "--addr",
                           "127.0.0.1:1", "--debug", "--user", "x", NULL),
                     0);
    assert_int_equal(a.count, 3);
    assert_string_equal(a.addr, "127.0.0.1:1");
    assert_true(a.debug);
    assert_int_equal(parse(&a, err, sizeof err, "recommend", NULL), CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "recommend: --user is required"));
    assert_int_equal(parse(&a, err, sizeof err, "recommend", "--user", "u", "--count", "x", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--count"));
    assert_int_equal(parse(&a, err, sizeof err, "recommend", "--user", "u", "--bogus", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--bogus"));
    /* --slot POS:ITEM:SOURCE, repeatable; the source may hold colons. */
    assert_int_equal(parse(&a, err, sizeof err, "recommend", "--user", "u", "--slot", "0:123:ads",
                           "--slot", "4:77:ops:spring", NULL),
                     0);
    assert_int_equal(a.n_slots, 2);
    assert_int_equal(a.slots[0].position, 0);
    assert_int_equal(a.slots[0].item_id, 123);
    assert_string_equal(a.slots[0].source, "ads");
    assert_int_equal(a.slots[1].position, 4);
    assert_string_equal(a.slots[1].source, "ops:spring");
    const char *bad[] = {"0:123", "x:1:ads", "1:0:ads", "1:2:", ":1:ads", "1::ads"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            parse(&a, err, sizeof err, "recommend", "--user", "u", "--slot", bad[i], NULL),
            CASCADE_CLI_USAGE);
        assert_non_null(strstr(err, "--slot: expected POS:ITEM:SOURCE"));
    }
    assert_int_equal(parse(&a, err, sizeof err, "frobnicate", NULL), CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "unknown command \"frobnicate\""));
    assert_int_equal(parse(&a, err, sizeof err, "--help", NULL), -1);
}

static void test_feedback_and_health_args(void **state)
{
    (void)state;
    struct cascade_cli_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof err, "feedback", "--user", "u", "--item", "42", "--type",
                           "play", "--value", "12.5", NULL),
                     0);
    assert_int_equal(a.item, 42);
    assert_int_equal(a.event_type, 7);
    assert_float_equal(a.value, 12.5f, 0);
    assert_int_equal(parse(&a, err, sizeof err, "feedback", "--user", "u", "--item", "42", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--type is required"));
    assert_int_equal(parse(&a, err, sizeof err, "feedback", "--user", "u", "--item", "0", "--type",
                           "click", NULL),
                     CASCADE_CLI_USAGE);
    assert_int_equal(parse(&a, err, sizeof err, "health", "--addr", "127.0.0.1:50052", NULL), 0);
    assert_int_equal(a.command, CASCADE_CLI_HEALTH);
    assert_string_equal(a.service, "");
    assert_int_equal(cascade_cli_event_type("click"), 2);
    assert_int_equal(cascade_cli_event_type("DISLIKE"), 8);
    assert_int_equal(cascade_cli_event_type("3"), 3);
    assert_int_equal(cascade_cli_event_type("99"), 0);
    assert_int_equal(cascade_cli_event_type("unspecified"), 0 /* value 0 = unknown */);
    assert_int_equal(cascade_cli_event_type("clik"), 0);
}

static void test_item_add_args(void **state)
{
    (void)state;
    struct cascade_cli_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof err, "item", "add", "--item", "900", "--author", "12",
                           "--category", "3", "--created-at", "1800000000", "--geohash", "wx4g0",
                           "--city", "2", "--media-type", "video", "--duration", "30.5", "--tags",
                           "4,5,6", NULL),
                     0);
    assert_int_equal(a.command, CASCADE_CLI_ITEM_ADD);
    assert_int_equal(a.item, 900);
    assert_int_equal(a.new_item.author, 12);
    assert_int_equal(a.new_item.category, 3);
    assert_int_equal(a.new_item.created_at, 1800000000);
    assert_string_equal(a.geohash, "wx4g0");
    assert_int_equal(a.city, 2);
    assert_int_equal(a.new_item.media_type, 2);
    assert_float_equal(a.new_item.duration_s, 30.5f, 0);
    assert_int_equal(a.new_item.n_tags, 3);
    assert_int_equal(a.new_item.tags[2], 6);
    assert_int_equal(parse(&a, err, sizeof err, "item", "add", "--author", "1", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "item add: --item is required"));
    assert_int_equal(parse(&a, err, sizeof err, "item", "remove", "--item", "1", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "expected the subcommand \"add\""));
    assert_int_equal(parse(&a, err, sizeof err, "item", "add", "--item", "1", "--tags",
                           "1,2,3,4,5,6,7,8,9", NULL),
                     CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--tags: at most 8"));
    assert_int_equal(
        parse(&a, err, sizeof err, "item", "add", "--item", "1", "--tags", "1,,2", NULL),
        CASCADE_CLI_USAGE);
    assert_int_equal(
        parse(&a, err, sizeof err, "item", "add", "--item", "1", "--media-type", "film", NULL),
        CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--media-type"));
    assert_int_equal(
        parse(&a, err, sizeof err, "item", "add", "--item", "1", "--duration", "-3", NULL),
        CASCADE_CLI_USAGE);
    assert_non_null(strstr(err, "--duration"));
}

static void test_table(void **state)
{
    (void)state;
    Cascade__V1__TaskScores tasks = CASCADE__V1__TASK_SCORES__INIT;
    Cascade__V1__ItemAttributes attrs = CASCADE__V1__ITEM_ATTRIBUTES__INIT;
    Cascade__V1__RecommendedItem item = CASCADE__V1__RECOMMENDED_ITEM__INIT;
    Cascade__V1__RecommendedItem *items[1] = {&item};
    char *channels[2] = {"itemcf", "hot"};
    Cascade__V1__LayerAssignment__ParamsEntry param =
        CASCADE__V1__LAYER_ASSIGNMENT__PARAMS_ENTRY__INIT;
    Cascade__V1__LayerAssignment__ParamsEntry *params[1] = {&param};
    Cascade__V1__LayerAssignment layer = CASCADE__V1__LAYER_ASSIGNMENT__INIT;
    Cascade__V1__LayerAssignment *layers[1] = {&layer};
    Cascade__V1__ExperimentContext exp = CASCADE__V1__EXPERIMENT_CONTEXT__INIT;
    Cascade__V1__StageTrace trace = CASCADE__V1__STAGE_TRACE__INIT;
    Cascade__V1__StageTrace *traces[1] = {&trace};
    char *reasons[1] = {"recall/itemcf: UNAVAILABLE: connection refused"};
    Cascade__V1__RecommendResponse resp = CASCADE__V1__RECOMMEND_RESPONSE__INIT;
    tasks.p_click = 0.125f;
    attrs.category = 7;
    attrs.author_id = 301;
    item.item_id = 12345;
    item.score = 0.5f;
    item.rank_score = 0.5f;
    item.rerank_score = 0.375f;
    item.position = 3;
    item.reason = CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED;
    item.source = "ads";
    item.channels = channels;
    item.n_channels = 2;
    item.tasks = &tasks;
    item.attrs = &attrs;
    param.key = "rerank.lambda";
    param.value = "0.5";
    layer.layer = "rerank";
    layer.bucket = 612;
    layer.experiment = "mmr_05";
    layer.params = params;
    layer.n_params = 1;
    exp.bucket_count = 1000;
    exp.layers = layers;
    exp.n_layers = 1;
    trace.stage = "recall/itemcf";
    trace.status_code = 14;
    trace.latency_us = 1500;
    trace.degraded = true;
    resp.items = items;
    resp.n_items = 1;
    resp.experiments = &exp;
    resp.degraded = true;
    resp.degraded_reasons = reasons;
    resp.n_degraded_reasons = 1;
    resp.trace = traces;
    resp.n_trace = 1;
    resp.request_id = "rid-1";

    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    cascade_cli_print_recommendation(out, "u1", &resp, true);
    fclose(out);
    assert_non_null(strstr(buf, "user u1  request rid-1  1 item\n"));
    assert_non_null(strstr(buf, "rerank     bucket  612  mmr_05  {rerank.lambda=0.5}"));
    assert_non_null(strstr(buf, "pos  item"));
    assert_non_null(
        strstr(buf, "   3  12345                    0.5000     0.5000     0.3750   0.1250"));
    assert_non_null(strstr(buf, "301  itemcf,hot"));
    assert_non_null(strstr(buf, " inserted:ads\n"));
    assert_non_null(strstr(buf, "  - recall/itemcf: UNAVAILABLE: connection refused\n"));
    assert_non_null(strstr(buf, "UNAVAILABLE"));
    assert_non_null(strstr(buf, "1.50"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recommend_args),
        cmocka_unit_test(test_feedback_and_health_args),
        cmocka_unit_test(test_item_add_args),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
