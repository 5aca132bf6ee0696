/* Unit tests for cascade-eval's channel list, merge weights and K values:
 * --k parsing and its errors, --channels, the default list (every registered
 * Recall channel but cache and the disabled ones), --merge with weights,
 * quotas and defaults (merge channels join the evaluated list), and the merge
 * read from orchestrator.channels of a config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "eval_channels.h"

static bool has_channel(const struct cascade_eval_run_opts *o, const char *name)
{
    for (size_t c = 0; c < o->n_channels; c++)
        if (strcmp(o->channels[c], name) == 0)
            return true;
    return false;
}

static void test_ks(void **state)
{
    (void)state;
    struct cascade_eval_run_opts o = {0};
    char err[256];
    assert_int_equal(cascade_eval_ks_parse(&o, "50, 100,200", err, sizeof err), 0);
    assert_int_equal(o.n_ks, 3);
    assert_int_equal(o.ks[0], 50);
    assert_int_equal(o.ks[2], 200);
    assert_int_equal(cascade_eval_ks_parse(&o, "100,50", err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "ascending"));
    assert_int_equal(cascade_eval_ks_parse(&o, "0", err, sizeof err), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_ks_parse(&o, "10x", err, sizeof err), CASCADE_EINVAL);
    assert_int_equal(cascade_eval_ks_parse(&o, "1,2,3,4,5,6,7,8,9", err, sizeof err),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_eval_ks_parse(&o, "", err, sizeof err), CASCADE_EINVAL);
}

static void test_channel_lists(void **state)
{
    (void)state;
    struct cascade_eval_run_opts o = {0};
    char err[256];
    assert_int_equal(cascade_eval_channels_parse(&o, "itemcf, swing,itemcf", err, sizeof err), 0);
    assert_int_equal(o.n_channels, 2); /* repeats collapse */
    assert_string_equal(o.channels[1], "swing");
    assert_int_equal(cascade_eval_channels_parse(&o, " , ", err, sizeof err), CASCADE_EINVAL);

    assert_int_equal(cascade_eval_channels_default(&o, NULL, err, sizeof err), 0);
    assert_true(has_channel(&o, "hot") && has_channel(&o, "itemcf"));
    assert_false(has_channel(&o, "cache")); /* always empty offline */
    size_t all = o.n_channels;
    cascade_config *cfg = cascade_config_parse(
        "{\"recall\": {\"channels\": {\"hot\": {\"enabled\": false}}}}", "t.json", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cascade_eval_channels_default(&o, cfg, err, sizeof err), 0);
    assert_false(has_channel(&o, "hot"));
    assert_int_equal(o.n_channels, all - 1);
    cascade_config_destroy(cfg);
}

static void test_merge_flag(void **state)
{
    (void)state;
    struct cascade_eval_run_opts o = {0};
    char err[256];
    assert_int_equal(cascade_eval_channels_parse(&o, "hot", err, sizeof err), 0);
    assert_int_equal(cascade_eval_merge_parse(&o, "itemcf=2:500, hot=0.5", 200, err, sizeof err),
                     0);
    assert_int_equal(o.n_merge, 2);
    assert_string_equal(o.merge[0].name, "itemcf");
    assert_true(o.merge[0].weight == 2.0);
    assert_int_equal(o.merge[0].quota, 500);
    assert_true(o.merge[1].weight == 0.5);
    assert_int_equal(o.merge[1].quota, 200); /* the default */
    assert_int_equal(o.n_channels, 2);       /* itemcf joined the evaluated channels */
    assert_true(has_channel(&o, "itemcf"));

    assert_int_equal(cascade_eval_merge_parse(&o, "itemcf=1,itemcf=2", 200, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "twice"));
    const char *bad[] = {"itemcf", "itemcf=", "itemcf=-1", "itemcf=1:0", "itemcf=1:x", "itemcf=1x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cascade_eval_merge_parse(&o, bad[i], 200, err, sizeof err),
                         CASCADE_EINVAL);

    cascade_eval_merge_equal(&o, 100);
    assert_int_equal(o.n_merge, o.n_channels);
    assert_true(o.merge[1].weight == 1.0);
    assert_int_equal(o.merge[1].quota, 100);
}

static void test_merge_from_config(void **state)
{
    (void)state;
    struct cascade_eval_run_opts o = {0};
    char err[512];
    cascade_config *cfg =
        cascade_config_parse("{\"orchestrator\": {\"channels\": ["
                             "{\"name\": \"swing\", \"weight\": 2.5, \"quota\": 300},"
                             "{\"name\": \"hot\", \"weight\": 0.5, \"quota\": 50}]}}",
                             "t.json", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cascade_eval_channels_parse(&o, "itemcf", err, sizeof err), 0);
    assert_int_equal(cascade_eval_merge_from_config(&o, cfg, err, sizeof err), 0);
    assert_int_equal(o.n_merge, 2);
    assert_string_equal(o.merge[0].name, "swing");
    assert_true(o.merge[0].weight == 2.5);
    assert_int_equal(o.merge[0].quota, 300);
    assert_int_equal(o.merge[1].quota, 50);
    assert_int_equal(o.n_channels, 3);
    assert_true(has_channel(&o, "swing") && has_channel(&o, "hot"));
    cascade_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ks),
        cmocka_unit_test(test_channel_lists),
        cmocka_unit_test(test_merge_flag),
        cmocka_unit_test(test_merge_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
