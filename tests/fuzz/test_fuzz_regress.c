/* Replays the fuzz corpus under the normal build: every generated seed must
 * decode and pass its target's validation (so the fuzzer starts from inputs
 * that reach past validation), and every saved input in
 * tests/fuzz/regress/<target>/ (inputs that once crashed or hung a target)
 * must run through the same decode + validate path without crashing and
 * end with the verdict recorded in its file name (.passed, .rejected,
 * .undecodable). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz_seeds.h"
#include "fuzz_targets.h"

static int run_seed(void *ctx, const char *target, const uint8_t *data, size_t size)
{
    size_t *count = ctx;
    const struct cascade_fuzz_target *t = cascade_fuzz_target_find(target);
    assert_non_null(t);
    int v = t->run(data, size);
    if (v != CASCADE_FUZZ_PASSED)
        fail_msg("seed %zu of %s: verdict %d, expected it to pass", *count, target, v);
    (*count)++;
    return 0;
}

static void test_seeds_pass_validation(void **state)
{
    (void)state;
    size_t count = 0;
    assert_int_equal(cascade_fuzz_seeds_each(run_seed, &count), 0);
    assert_true(count >= 13);
}

/* Every target has at least one seed. */
static int mark_seen(void *ctx, const char *target, const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    size_t n;
    const struct cascade_fuzz_target *all = cascade_fuzz_targets(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, target) == 0)
            ((char *)ctx)[i] = 1;
    return 0;
}

static void test_every_target_has_a_seed(void **state)
{
    (void)state;
    size_t n;
    const struct cascade_fuzz_target *all = cascade_fuzz_targets(&n);
    char seen[64] = {0};
    assert_true(n <= sizeof seen);
    assert_int_equal(cascade_fuzz_seeds_each(mark_seen, seen), 0);
    for (size_t i = 0; i < n; i++)
        if (!seen[i])
            fail_msg("target %s has no seed", all[i].name);
}

static int expected_verdict(const char *file)
{
    const char *dot = strrchr(file, '.');
    if (dot && strcmp(dot, ".passed") == 0)
        return CASCADE_FUZZ_PASSED;
    if (dot && strcmp(dot, ".rejected") == 0)
        return CASCADE_FUZZ_REJECTED;
    if (dot && strcmp(dot, ".undecodable") == 0)
        return CASCADE_FUZZ_UNDECODABLE;
    return -1;
}

static void replay_file(const struct cascade_fuzz_target *t, const char *path, const char *file)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int want = expected_verdict(file);
    if (want < 0)
        fail_msg("%s: name must end in .passed, .rejected or .undecodable", path);
    int got = t->run(buf, len);
    if (got != want)
        fail_msg("%s: verdict %d, expected %d", path, got, want);
}

static void test_saved_inputs_replay(void **state)
{
    (void)state;
    const char *src = getenv("CASCADE_SOURCE_DIR");
    assert_non_null(src);
    size_t n;
    const struct cascade_fuzz_target *all = cascade_fuzz_targets(&n);
    for (size_t i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src, all[i].name);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.')
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            replay_file(&all[i], path, e->d_name);
        }
        closedir(d);
    }
}

static int setup(void **state)
{
    (void)state;
    return cascade_fuzz_init();
}

static int teardown(void **state)
{
    (void)state;
    cascade_fuzz_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_pass_validation),
        cmocka_unit_test(test_every_target_has_a_seed),
        cmocka_unit_test(test_saved_inputs_replay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
