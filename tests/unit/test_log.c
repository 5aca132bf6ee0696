/* Unit tests for common/log.c: the line format, level filtering and level
 * names. stderr is redirected into a temp file and read back. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "log.h"

/* Run fn with stderr captured; returns what it wrote (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long len = ftell(tmp);
    char *out = calloc((size_t)len + 1, 1);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return out;
}

static void log_some(void)
{
    cascade_log_init("recall", CASCADE_LOG_INFO);
    CASCADE_DEBUG("r1", "hidden %d", 1);
    CASCADE_INFO("rid-7", "served %d items", 42);
    CASCADE_WARN(NULL, "no request");
    CASCADE_ERROR("", "empty rid");
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
}

static void test_format_and_filter(void **state)
{
    (void)state;
    char *out = capture_stderr(log_some);
    const char *ts = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ";
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "%sINFO recall \\[rid-7\\] served 42 items$", ts);
    assert_matches(out, pattern);
    snprintf(pattern, sizeof(pattern), "%sWARN recall no request$", ts);
    assert_matches(out, pattern);
    snprintf(pattern, sizeof(pattern), "%sERROR recall empty rid$", ts);
    assert_matches(out, pattern);
    assert_null(strstr(out, "hidden")); /* below the level */
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    free(out);
}

static void log_long(void)
{
    cascade_log_init("x", CASCADE_LOG_DEBUG);
    char big[10000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CASCADE_DEBUG("r", "%s", big);
    CASCADE_DEBUG("r", "after");
}

static void test_long_line_truncated(void **state)
{
    (void)state;
    char *out = capture_stderr(log_long);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_true(nl - out < 4096);               /* one bounded line ... */
    assert_non_null(strstr(nl + 1, "after\n")); /* ... and the next one intact */
    free(out);
}

static void test_parse_level(void **state)
{
    (void)state;
    enum cascade_log_level l;
    assert_int_equal(cascade_log_parse_level("debug", &l), 0);
    assert_int_equal(l, CASCADE_LOG_DEBUG);
    assert_int_equal(cascade_log_parse_level("WARN", &l), 0);
    assert_int_equal(l, CASCADE_LOG_WARN);
    assert_int_equal(cascade_log_parse_level("error", &l), 0);
    assert_int_equal(l, CASCADE_LOG_ERROR);
    assert_int_equal(cascade_log_parse_level("verbose", &l), CASCADE_EINVAL);
    assert_int_equal(cascade_log_parse_level(NULL, &l), CASCADE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_filter),
        cmocka_unit_test(test_long_line_truncated),
        cmocka_unit_test(test_parse_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
