/* Unit tests for common/events.c: the table agrees with the proto's EventType
 * (numbers and names, read from the generated descriptor), name <-> number
 * round trips, what parse rejects, and the default interest weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cascade/v1/common.pb-c.h"
#include "error.h"
#include "events.h"

/* Every EventType value but UNSPECIFIED has our name: its enum name without
 * the "EVENT_TYPE_" prefix, in lower case; and there are no others. */
static void test_matches_proto(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *d = &cascade__v1__event_type__descriptor;
    const char *prefix = "EVENT_TYPE_";
    size_t checked = 0;
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *v = &d->values[i];
        if (v->value == 0)
            continue;
        char want[32];
        assert_int_equal(strncmp(v->name, prefix, strlen(prefix)), 0);
        const char *rest = v->name + strlen(prefix);
        assert_true(strlen(rest) < sizeof want);
        for (size_t k = 0; k <= strlen(rest); k++)
            want[k] = (char)tolower((unsigned char)rest[k]);
        assert_non_null(cascade_event_type_name((uint32_t)v->value));
        assert_string_equal(cascade_event_type_name((uint32_t)v->value), want);
        checked++;
    }
    assert_int_equal(checked, CASCADE_EV_MAX);
    assert_int_equal(CASCADE_EV_PLAY, CASCADE__V1__EVENT_TYPE__EVENT_TYPE_PLAY);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    char names[256] = "";
    for (uint32_t t = 1; t <= CASCADE_EV_MAX; t++) {
        uint32_t back = 0;
        const char *name = cascade_event_type_name(t);
        assert_non_null(name);
        assert_int_equal(cascade_event_type_parse(name, &back), 0);
        assert_int_equal(back, t);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", t > 1 ? ", " : "",
                 name);
    }
    /* The list used in messages is the table, in type order. */
    assert_string_equal(names, CASCADE_EV_NAMES);
    assert_string_equal(cascade_event_type_name(CASCADE_EV_CLICK), "click");
    assert_string_equal(cascade_event_type_name(CASCADE_EV_DISLIKE), "dislike");
    assert_string_equal(cascade_event_type_name(CASCADE_EV_HIDE_AUTHOR), "hide_author");
    assert_null(cascade_event_type_name(0));
    assert_null(cascade_event_type_name(CASCADE_EV_MAX + 1));
    assert_null(cascade_event_type_name(99));
}

static void test_parse(void **state)
{
    (void)state;
    uint32_t t = 0;
    assert_int_equal(cascade_event_type_parse("follow", &t), 0);
    assert_int_equal(t, CASCADE_EV_FOLLOW);
    assert_int_equal(cascade_event_type_parse("collect", &t), 0);
    assert_int_equal(t, CASCADE_EV_COLLECT);
    /* Lower-case names only: numbers, other cases, UNSPECIFIED and junk fail
     * and leave *type alone. */
    t = 77;
    const char *bad[] = {"nope", "", "CLICK", "Click", "2", "unspecified", "unknown", "click "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cascade_event_type_parse(bad[i], &t), CASCADE_EINVAL);
    assert_int_equal(cascade_event_type_parse(NULL, &t), CASCADE_EINVAL);
    assert_int_equal(t, 77);
}

static void test_interest_weights(void **state)
{
    (void)state;
    assert_true(cascade_event_interest_weight(CASCADE_EV_CLICK) == 1.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_LIKE) == 2.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_COLLECT) == 3.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_SHARE) == 3.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_FOLLOW) == 4.0f);
    /* Not interest signals: shown, played (offline and online agree), disliked. */
    assert_true(cascade_event_interest_weight(CASCADE_EV_IMPRESSION) == 0.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_PLAY) == 0.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_DISLIKE) == 0.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_HIDE_AUTHOR) == 0.0f);
    assert_true(cascade_event_interest_weight(0) == 0.0f);
    assert_true(cascade_event_interest_weight(CASCADE_EV_MAX + 1) == 0.0f);
    assert_true(cascade_event_interest_weight(UINT32_MAX) == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_proto),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_interest_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
