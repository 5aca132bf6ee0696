/* Unit tests for common/latest_file.c: write/read round trip, whitespace
 * tolerance, rejection of paths and empty files, and stat identity changing
 * on every atomic rewrite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "latest_file.h"
#include "support.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_round_trip_and_stat(void **state)
{
    (void)state;
    char dir[256], path[512], name[64], err[512] = "";
    struct cascade_latest_stat a, b, none;
    assert_non_null(test_tempdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/m.latest", dir);
    cascade_latest_stat_get(path, &none);
    assert_false(none.exists);
    assert_int_equal(cascade_latest_read(path, name, sizeof name, err, sizeof err),
                     CASCADE_ENOTFOUND);
    assert_int_equal(cascade_latest_write(path, "m-1.safetensors", err, sizeof err), 0);
    cascade_latest_stat_get(path, &a);
    assert_true(a.exists);
    assert_false(cascade_latest_stat_same(&a, &none));
    assert_int_equal(cascade_latest_read(path, name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "m-1.safetensors");
    /* A rewrite with the same length in the same second is still noticed (new inode). */
    assert_int_equal(cascade_latest_write(path, "m-2.safetensors", err, sizeof err), 0);
    cascade_latest_stat_get(path, &b);
    assert_false(cascade_latest_stat_same(&a, &b));
    assert_true(cascade_latest_stat_same(&b, &b));
    test_rmdir(dir);
}

static void test_read_rejects_bad_content(void **state)
{
    (void)state;
    char dir[256], path[512], name[64], err[512] = "";
    assert_non_null(test_tempdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/m.latest", dir);
    put(path, "  \t m.safetensors \n");
    assert_int_equal(cascade_latest_read(path, name, sizeof name, err, sizeof err), 0);
    assert_string_equal(name, "m.safetensors");
    const char *bad[] = {"", "\n", "../m.safetensors\n", "/etc/passwd\n", "..\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(path, bad[i]);
        assert_int_equal(cascade_latest_read(path, name, sizeof name, err, sizeof err),
                         CASCADE_EFORMAT);
        assert_non_null(strstr(err, "expected one model file name"));
    }
    /* Longer than the caller's buffer. */
    put(path, "a-very-long-model-file-name.safetensors\n");
    assert_int_equal(cascade_latest_read(path, name, 8, err, sizeof err), CASCADE_EFORMAT);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_stat),
        cmocka_unit_test(test_read_rejects_bad_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
