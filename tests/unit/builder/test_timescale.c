/* Unit tests of the derived time constants (timescale.h): the span of a log,
 * the share of it a derived constant takes, the clamp, and an explicit
 * setting (0 included) overriding the derivation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <cmocka.h>

#include "dataset.h"
#include "timescale.h"

#define DAY 86400

/* A log of one user and item with events at the given times (any order). */
static cascade_dataset *log_at(const int64_t *ts, size_t n)
{
    cascade_dataset *ds = cascade_dataset_create();
    struct cascade_ds_user u = {0};
    struct cascade_ds_item it = {0};
    size_t ui, ii;
    assert_non_null(ds);
    snprintf(u.id, sizeof u.id, "u");
    it.id = 1;
    assert_int_equal(cascade_dataset_add_user(ds, &u, &ui), 0);
    assert_int_equal(cascade_dataset_add_item(ds, &it, &ii), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cascade_dataset_add_event_idx(ds, ts[i], (uint32_t)ui, (uint32_t)ii,
                                                       CASCADE_EV_CLICK, 0),
                         0);
    return ds;
}

static void test_span(void **state)
{
    (void)state;
    assert_true(cascade_timescale_span_days(NULL) == 0);
    const int64_t one[] = {1700000000};
    cascade_dataset *ds = log_at(one, 1);
    assert_true(cascade_timescale_span_days(ds) == 0);
    cascade_dataset_destroy(ds);
    /* Unsorted: the span is last − first, not last − events[0]. */
    const int64_t day[] = {1700000000 + 3600, 1700000000, 1700000000 + DAY};
    ds = log_at(day, 3);
    assert_true(fabs(cascade_timescale_span_days(ds) - 1.0) < 1e-12);
    cascade_dataset_destroy(ds);
}

/* A day-long log gets a share of a day, a months-long one a share of its
 * months, a log of decades the cap; the floor is one hour. */
static void test_derived_follows_span(void **state)
{
    (void)state;
    double share = CASCADE_TIMESCALE_HOT_SHARE;
    assert_true(fabs(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, share, 1.0) - share) < 1e-12);
    assert_true(fabs(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, share, 90.0) - share * 90) <
                1e-9);
    assert_true(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, share, 30.0) <
                cascade_timescale_days(CASCADE_TIMESCALE_AUTO, share, 300.0));
    assert_true(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, 0.5, 1e6) ==
                CASCADE_TIMESCALE_MAX_DAYS);
    assert_true(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, 0.25, 0.0) ==
                CASCADE_TIMESCALE_MIN_DAYS);
    assert_true(cascade_timescale_days(CASCADE_TIMESCALE_AUTO, 0.25, NAN) ==
                CASCADE_TIMESCALE_MIN_DAYS);
}

/* Any value set (>= 0) is used as it is, 0 (no decay) included, whatever
 * the span. */
static void test_explicit_overrides(void **state)
{
    (void)state;
    assert_true(cascade_timescale_days(3.0, 0.25, 8000.0) == 3.0);
    assert_true(cascade_timescale_days(0.0, 0.25, 8000.0) == 0.0);
    assert_true(cascade_timescale_days(5000.0, 0.25, 1.0) == 5000.0); /* no clamp either */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span),
        cmocka_unit_test(test_derived_follows_span),
        cmocka_unit_test(test_explicit_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
