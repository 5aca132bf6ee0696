/* Unit tests for common/log.c: the line format, level filtering, level names,
 * escaping of hostile arguments and the rate limiter (driven by a fake clock).
 * stderr is redirected into a temp file and read back. */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
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

static int count_lines(const char *text)
{
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    return lines;
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
    assert_int_equal(count_lines(out), 3);
    free(out);
}

/* What log_filled logs: fill_len copies of fill_byte, then "after". */
static char fill_byte;
static size_t fill_len;

static void log_filled(void)
{
    cascade_log_init("x", CASCADE_LOG_DEBUG);
    char big[10000];
    assert_true(fill_len < sizeof(big));
    memset(big, fill_byte, fill_len);
    big[fill_len] = '\0';
    CASCADE_DEBUG("r", "%s", big);
    CASCADE_DEBUG("r", "after");
}

static void test_long_line_truncated(void **state)
{
    (void)state;
    fill_byte = 'a';
    fill_len = 9999;
    char *out = capture_stderr(log_filled);
    assert_int_equal(count_lines(out), 2);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_true(nl - out < 4096);               /* one bounded line ... */
    assert_non_null(strstr(nl + 1, "after\n")); /* ... and the next one intact */
    free(out);
}

/* ---- escaping ---- */

/* What a hostile user id looked like: a newline and a forged prefix of a second line. */
static const char forged_uid[] = "u1\n2026-12-06T22:00:00.000Z ERROR recall forged";

static void log_forged(void)
{
    cascade_log_init("recall", CASCADE_LOG_INFO);
    CASCADE_WARN("rid\r\n9", "user %s not found", forged_uid);
}

static void test_forged_line_is_one_escaped_line(void **state)
{
    (void)state;
    char *out = capture_stderr(log_forged);
    assert_int_equal(count_lines(out), 1);
    /* The newline arrives as the two characters backslash and n, on the same line. */
    assert_non_null(strstr(out, "WARN recall [rid\\r\\n9] user u1\\n2026-12-06T22:00:00.000Z ERROR "
                                "recall forged not found\n"));
    assert_null(strstr(out, "\nERROR"));
    free(out);
}

static void log_classes(void)
{
    cascade_log_init("x", CASCADE_LOG_INFO);
    /* C0 controls, DEL, a backslash, a C1 control (U+0085), U+2028, a bidi override (U+202E),
     * a stray continuation byte, an overlong '/', a surrogate, a truncated sequence, and valid
     * é, € and U+1F600, which pass through unchanged. */
    CASCADE_INFO(NULL,
                 "a\tb\x1b[31mc\x7f d\\e \xc2\x85|\xe2\x80\xa8|\xe2\x80\xae|\x80|\xc0\xaf|"
                 "\xed\xa0\x80|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|%c|\xe2\x82",
                 0);
}

static void test_escape_classes(void **state)
{
    (void)state;
    char *out = capture_stderr(log_classes);
    assert_int_equal(count_lines(out), 1);
    const char *want =
        "INFO x a\\tb\\x1b[31mc\\x7f d\\\\e \\xc2\\x85|\\xe2\\x80\\xa8|\\xe2\\x80\\xae|"
        "\\x80|\\xc0\\xaf|\\xed\\xa0\\x80|\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
        "\\x00|\\xe2\\x82\n";
    if (!strstr(out, want))
        fail_msg("got \"%s\", want it to end in \"%s\"", out, want);
    free(out);
}

static void test_escaped_truncation_keeps_escapes_whole(void **state)
{
    (void)state;
    fill_byte = '\n'; /* each escapes to two bytes: the cut falls among the escapes */
    fill_len = 2999;
    char *out = capture_stderr(log_filled);
    assert_int_equal(count_lines(out), 2);
    char *nl = strchr(out, '\n');
    assert_true(nl - out < 4096);
    /* Cut between escapes: the line ends in "\n" pairs, never a lone backslash. */
    assert_true(nl[-1] == 'n' && nl[-2] == '\\');
    size_t slashes = 0;
    for (char *p = nl - 1; p >= out && (*p == '\\' || *p == 'n'); p--)
        slashes += *p == '\\';
    assert_true(slashes > 1000);
    assert_non_null(strstr(nl + 1, "after\n"));
    free(out);
}

/* ---- rate limiting, on a fake clock ---- */

static atomic_llong fake_ms;

static int64_t fake_clock(void)
{
    return atomic_load(&fake_ms);
}

static void fake_clock_start(void)
{
    atomic_store(&fake_ms, 1000000);
    cascade_log__set_clock(fake_clock);
}

/* One call site, so every call is the same cause. */
static void warn_redis_down(int i)
{
    CASCADE_WARN(NULL, "redis down (attempt %d)", i);
}

static void log_burst(void)
{
    fake_clock_start();
    cascade_log_init("recall", CASCADE_LOG_INFO);
    for (int i = 0; i < 1000; i++) {
        warn_redis_down(i);
        CASCADE_DEBUG(NULL, "debug %d", i);      /* below the level: neither printed nor counted */
        CASCADE_INFO(NULL, "other cause %d", i); /* another call site: limited on its own */
    }
    atomic_fetch_add(&fake_ms, 1500);
    warn_redis_down(1000);
    cascade_log__set_clock(NULL);
}

static void test_repeats_limited_with_count(void **state)
{
    (void)state;
    char *out = capture_stderr(log_burst);
    /* The first of each cause, the other cause's repeats summarised when its window ended, and
     * the redis cause's next line with its own count. */
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "WARN recall redis down (attempt 0)\n"));
    assert_non_null(strstr(out, "INFO recall other cause 0\n"));
    assert_non_null(
        strstr(out, "INFO recall (and 999 more like \"other cause %d\" at test_log.c:"));
    assert_non_null(strstr(
        out, "WARN recall redis down (attempt 1000) (and 999 more like this in the last 1.5 s)\n"));
    free(out);
}

static void log_window_edge(void)
{
    fake_clock_start();
    cascade_log_init("r", CASCADE_LOG_INFO);
    warn_redis_down(0);
    atomic_fetch_add(&fake_ms, 999);
    warn_redis_down(1); /* still inside the second: suppressed */
    atomic_fetch_add(&fake_ms, 1);
    warn_redis_down(2); /* a second after the last line: printed */
    warn_redis_down(3);
    cascade_log_flush_suppressed(); /* the quiet cause's last repeat is not lost */
    cascade_log__set_clock(NULL);
}

static void test_window_and_flush(void **state)
{
    (void)state;
    char *out = capture_stderr(log_window_edge);
    assert_int_equal(count_lines(out), 3);
    assert_null(strstr(out, "(attempt 1)"));
    assert_non_null(
        strstr(out, "WARN r redis down (attempt 2) (and 1 more like this in the last 1.0 s)\n"));
    assert_non_null(
        strstr(out, "WARN r (and 1 more like \"redis down (attempt %d)\" at test_log.c:"));
    assert_null(strstr(out, "(attempt 3)"));
    free(out);
}

static void log_debug_burst(void)
{
    fake_clock_start();
    cascade_log_init("r", CASCADE_LOG_DEBUG);
    for (int i = 0; i < 100; i++)
        CASCADE_DEBUG(NULL, "step %d", i);
    cascade_log_flush_suppressed();
    cascade_log__set_clock(NULL);
}

/* DEBUG is asked for to see every event: it is not limited. */
static void test_debug_not_limited(void **state)
{
    (void)state;
    char *out = capture_stderr(log_debug_burst);
    assert_int_equal(count_lines(out), 100);
    assert_non_null(strstr(out, "DEBUG r step 99\n"));
    free(out);
}

enum { THREADS = 4, PER_THREAD = 20000 };

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        warn_redis_down(i);
    return NULL;
}

static void log_threads(void)
{
    fake_clock_start();
    cascade_log_init("r", CASCADE_LOG_INFO);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_fetch_add(&fake_ms, 1000);
    warn_redis_down(-1);
    cascade_log__set_clock(NULL);
}

static void test_threads_count_exactly(void **state)
{
    (void)state;
    char *out = capture_stderr(log_threads);
    assert_int_equal(count_lines(out), 2);
    char want[128];
    snprintf(want, sizeof(want), "(attempt -1) (and %d more like this in the last 1.0 s)\n",
             THREADS * PER_THREAD - 1);
    assert_non_null(strstr(out, want));
    free(out);
}

enum { CAUSES = 1000 };
static char *cause_fmts[CAUSES];

static void log_many_causes(void)
{
    fake_clock_start();
    cascade_log_init("r", CASCADE_LOG_INFO);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < CAUSES; i++)
            cascade_log(CASCADE_LOG_WARN, NULL, cause_fmts[i], i);
    cascade_log_flush_suppressed();
    cascade_log__set_clock(NULL);
}

/* Sum of the N in every "(and N more" of text. */
static long suppressed_total(const char *text)
{
    long sum = 0;
    for (const char *p = text; (p = strstr(p, "(and ")) != NULL; p += 5)
        sum += strtol(p + 5, NULL, 10);
    return sum;
}

static void test_many_causes_bounded_and_counted(void **state)
{
    (void)state;
    /* Heap copies: a thousand distinct format pointers, a thousand causes. */
    for (int i = 0; i < CAUSES; i++)
        cause_fmts[i] = strdup("cause %d");
    char *out = capture_stderr(log_many_causes);
    int lines = count_lines(out);
    int summaries = 0; /* lines that only report repeats; the rest print a call each */
    for (const char *p = out; (p = strstr(p, "WARN r (and ")) != NULL; p++)
        summaries++;
    /* The table has fewer slots than causes: many causes share the overflow cause, so far
     * fewer lines than the 3000 calls, yet every call is printed or counted. */
    assert_true(lines < CAUSES);
    assert_matches(out, "WARN r \\(and [0-9]+ more lines of other causes in the last 0.0 s\\)$");
    assert_int_equal((lines - summaries) + suppressed_total(out), 3 * CAUSES);
    for (int i = 0; i < CAUSES; i++)
        free(cause_fmts[i]);
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
        cmocka_unit_test(test_forged_line_is_one_escaped_line),
        cmocka_unit_test(test_escape_classes),
        cmocka_unit_test(test_escaped_truncation_keeps_escapes_whole),
        cmocka_unit_test(test_repeats_limited_with_count),
        cmocka_unit_test(test_window_and_flush),
        cmocka_unit_test(test_debug_not_limited),
        cmocka_unit_test(test_threads_count_exactly),
        cmocka_unit_test(test_many_causes_bounded_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
