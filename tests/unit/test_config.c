/* Unit tests for common/config.c: parse errors with file:line:col, typed
 * getters (defaults, ranges, positions in type errors) and --set overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "support.h"

static const char *const sample =
    "{\n"
    "  \"redis\": {\"addr\": \"127.0.0.1:6379\", \"timeout_ms\": 250},\n"
    "  \"recall\": {\n"
    "    \"quota\": \"many\",\n"
    "    \"weight\": 0.5,\n"
    "    \"enabled\": true,\n"
    "    \"channels\": [ {\"name\": \"hot\"}, {\"name\": 7} ]\n"
    "  }\n"
    "}\n";

static cascade_config *load_sample(void)
{
    char err[256] = "";
    cascade_config *c = cascade_config_parse(sample, "stack.json", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(err, "");
    return c;
}

static void test_parse_errors_name_position(void **state)
{
    (void)state;
    char err[256];
    assert_null(cascade_config_parse("{\n  \"a\": 1,\n  \"b\": \n}", "x.json", err, sizeof(err)));
    assert_string_equal(err, "x.json:4:1: unexpected token near '}'");
    assert_null(cascade_config_parse("{\"a\": 1, \"a\": 2}", "dup.json", err, sizeof(err)));
    assert_non_null(strstr(err, "dup.json:1:"));
    assert_non_null(strstr(err, "duplicate object key"));
    assert_null(cascade_config_parse("[1, 2]", "arr.json", err, sizeof(err)));
    assert_string_equal(err, "arr.json:1:1: the top level must be a JSON object");
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[256], path[512], err[512];
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/cfg.json", dir);

    assert_null(cascade_config_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));

    FILE *f = fopen(path, "w");
    fputs("{\n  \"rank\": {\n    \"lr\": 0.1,,\n  }\n}\n", f);
    fclose(f);
    assert_null(cascade_config_load(path, err, sizeof(err)));
    char want[600];
    snprintf(want, sizeof(want), "%s:3:15: ", path);
    assert_memory_equal(err, want, strlen(want));

    f = fopen(path, "w");
    fputs("{\"rank\": {\"lr\": 0.25}}", f);
    fclose(f);
    cascade_config *c = cascade_config_load(path, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(cascade_config_source(c), path);
    double lr = 0;
    assert_int_equal(cascade_config_double(c, "rank.lr", 1.0, 0.0, 1.0, &lr, err, sizeof(err)), 0);
    assert_true(lr == 0.25);
    cascade_config_destroy(c);
    cascade_config_destroy(NULL);
    test_rmdir(dir);
}

static void test_typed_getters(void **state)
{
    (void)state;
    cascade_config *c = load_sample();
    char err[256] = "";
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;

    assert_int_equal(cascade_config_int(c, "redis.timeout_ms", 500, 1, 10000, &i, err, sizeof(err)),
                     0);
    assert_int_equal(i, 250);
    assert_int_equal(cascade_config_int(c, "redis.missing", 500, 1, 10000, &i, err, sizeof(err)),
                     0);
    assert_int_equal(i, 500);
    assert_int_equal(cascade_config_double(c, "recall.weight", 1, 0, 1, &d, err, sizeof(err)), 0);
    assert_true(d == 0.5);
    /* Integers are numbers too. */
    assert_int_equal(cascade_config_double(c, "redis.timeout_ms", 1, 0, 1e6, &d, err, sizeof(err)),
                     0);
    assert_true(d == 250.0);
    assert_int_equal(cascade_config_bool(c, "recall.enabled", false, &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_int_equal(cascade_config_string(c, "redis.addr", "x", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "127.0.0.1:6379");
    assert_int_equal(cascade_config_string(c, "nope.addr", "dflt", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(cascade_config_string(c, "recall.channels.0.name", "x", &s, err, sizeof(err)),
                     0);
    assert_string_equal(s, "hot");
    assert_null(cascade_config_get(c, "recall.channels.5"));
    assert_null(cascade_config_get(c, "redis.addr.deeper"));
    cascade_config_destroy(c);
}

/* cascade_config_size: the default in place, the value when present, and an
 * out-of-range value refused with the range and *v left alone. */
static void test_config_size(void **state)
{
    (void)state;
    cascade_config *c = load_sample();
    char err[256] = "";
    size_t v = 7;
    assert_int_equal(cascade_config_size(c, "redis.missing", &v, 1, 10, err, sizeof(err)), 0);
    assert_int_equal(v, 7);
    assert_int_equal(cascade_config_size(c, "redis.timeout_ms", &v, 0, 1000, err, sizeof(err)), 0);
    assert_int_equal(v, 250);
    v = 3;
    assert_int_equal(cascade_config_size(c, "redis.timeout_ms", &v, 0, 100, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_int_equal(v, 3);
    assert_non_null(strstr(err, "redis.timeout_ms"));
    assert_non_null(strstr(err, "[0, 100]"));
    cascade_config_destroy(c);
}

static void test_type_errors_carry_position(void **state)
{
    (void)state;
    cascade_config *c = load_sample();
    char err[256];
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;

    assert_int_equal(cascade_config_int(c, "recall.quota", 10, 1, 100, &i, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_string_equal(
        err, "stack.json:4:14: recall.quota: expected an integer in [1, 100], got \"many\"");
    assert_int_equal(i, 0); /* untouched on error */

    assert_int_equal(cascade_config_int(c, "redis.timeout_ms", 500, 1, 100, &i, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_string_equal(
        err, "stack.json:2:53: redis.timeout_ms: expected an integer in [1, 100], got 250");

    assert_int_equal(cascade_config_double(c, "recall.weight", 1, 0.6, 1, &d, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "stack.json:5:15: recall.weight: expected a number in [0.6, 1]"));

    assert_int_equal(cascade_config_bool(c, "recall.weight", false, &b, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_string_equal(err, "stack.json:5:15: recall.weight: expected true or false, got 0.5");

    assert_int_equal(cascade_config_string(c, "recall.channels.1.name", "x", &s, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_string_equal(err, "stack.json:7:45: recall.channels.1.name: expected a string, got 7");
    cascade_config_destroy(c);
}

static void test_set_overrides(void **state)
{
    (void)state;
    cascade_config *c = load_sample();
    char err[256];
    int64_t i = 0;
    const char *s = NULL;

    assert_int_equal(cascade_config_set(c, "recall.quota=300", err, sizeof(err)), 0);
    assert_int_equal(cascade_config_int(c, "recall.quota", 10, 1, 1000, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 300);

    /* Not valid JSON: taken as a string. Intermediate objects are created. */
    assert_int_equal(
        cascade_config_set(c, "orchestrator.endpoints.hot=127.0.0.1:50051", err, sizeof(err)), 0);
    assert_int_equal(
        cascade_config_string(c, "orchestrator.endpoints.hot", NULL, &s, err, sizeof(err)), 0);
    assert_string_equal(s, "127.0.0.1:50051");

    /* Valid JSON: a quoted value stays a string, an object becomes an object. */
    assert_int_equal(cascade_config_set(c, "redis.addr=\"10.0.0.1:7000\"", err, sizeof(err)), 0);
    assert_int_equal(cascade_config_string(c, "redis.addr", NULL, &s, err, sizeof(err)), 0);
    assert_string_equal(s, "10.0.0.1:7000");
    assert_int_equal(cascade_config_set(c, "rank.fusion={\"kind\": \"sum\"}", err, sizeof(err)), 0);
    assert_int_equal(cascade_config_string(c, "rank.fusion.kind", NULL, &s, err, sizeof(err)), 0);
    assert_string_equal(s, "sum");

    /* Type errors on an overridden value name the flag, not a stale position. */
    assert_int_equal(cascade_config_set(c, "recall.weight=heavy", err, sizeof(err)), 0);
    double d;
    assert_int_equal(cascade_config_double(c, "recall.weight", 1, 0, 1, &d, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_string_equal(err, "--set recall.weight: expected a number in [0, 1], got \"heavy\"");

    assert_int_equal(cascade_config_set(c, "recall.quota", err, sizeof(err)), CASCADE_EINVAL);
    assert_string_equal(err, "--set recall.quota: expected path=value");
    assert_int_equal(cascade_config_set(c, "=3", err, sizeof(err)), CASCADE_EINVAL);
    assert_int_equal(cascade_config_set(c, "a..b=3", err, sizeof(err)), CASCADE_EINVAL);
    assert_int_equal(cascade_config_set(c, "redis.addr.host=x", err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "\"addr\" is not an object"));
    cascade_config_destroy(c);
}

static void test_empty_config(void **state)
{
    (void)state;
    cascade_config *c = cascade_config_empty();
    assert_non_null(c);
    int64_t i = 0;
    char err[128];
    assert_int_equal(cascade_config_int(c, "a.b", 7, 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 7);
    assert_int_equal(cascade_config_set(c, "a.b=11", err, sizeof(err)), 0);
    assert_int_equal(cascade_config_int(c, "a.b", 7, 0, 10, &i, err, sizeof(err)), CASCADE_EINVAL);
    assert_string_equal(err, "--set a.b: expected an integer in [0, 10], got 11");
    cascade_config_destroy(c);
}

/* A NULL config reads as an empty one: every getter returns its default. */
static void test_null_config_gives_defaults(void **state)
{
    (void)state;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *str = NULL;
    char err[128] = "";
    assert_null(cascade_config_get(NULL, "a"));
    assert_int_equal(cascade_config_int(NULL, "a.b", 7, 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 7);
    assert_int_equal(cascade_config_double(NULL, "a.c", 0.5, 0, 1, &d, err, sizeof(err)), 0);
    assert_true(d == 0.5);
    assert_int_equal(cascade_config_bool(NULL, "a.d", true, &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_int_equal(cascade_config_string(NULL, "a.e", "x", &str, err, sizeof(err)), 0);
    assert_string_equal(str, "x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors_name_position),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_config_size),
        cmocka_unit_test(test_type_errors_carry_position),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_empty_config),
        cmocka_unit_test(test_null_config_gives_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
