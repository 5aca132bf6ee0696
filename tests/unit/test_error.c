/* Unit tests for common/error.c: messages and the one error → gRPC status table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"

static void test_grpc_mapping(void **state)
{
    (void)state;
    assert_int_equal(cascade_error_to_grpc(CASCADE_OK), GRPC_STATUS_OK);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cascade_error_to_grpc(CASCADE_ENOMEM), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EIO), GRPC_STATUS_INTERNAL);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EUNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(cascade_error_to_grpc(CASCADE_ETIMEDOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(cascade_error_to_grpc(CASCADE_ETOOBIG), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(cascade_error_to_grpc(CASCADE_ENOTFOUND), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EFORMAT), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(cascade_error_to_grpc(CASCADE_ECANCELLED), GRPC_STATUS_CANCELLED);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EUNIMPLEMENTED), GRPC_STATUS_UNIMPLEMENTED);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EINTERNAL), GRPC_STATUS_INTERNAL);
    assert_int_equal(cascade_error_to_grpc(CASCADE_EDATA), GRPC_STATUS_FAILED_PRECONDITION);
    /* A code nobody defined is a bug, reported as INTERNAL. */
    assert_int_equal(cascade_error_to_grpc(-999), GRPC_STATUS_INTERNAL);
    assert_int_equal(cascade_error_to_grpc(42), GRPC_STATUS_INTERNAL);
}

static void test_messages_distinct(void **state)
{
    (void)state;
    const char *seen[13];
    for (int code = 0; code >= CASCADE_EDATA; code--) {
        const char *msg = cascade_strerror(code);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        assert_string_not_equal(msg, "unknown error");
        for (int j = 0; j < -code; j++)
            assert_string_not_equal(seen[j], msg);
        seen[-code] = msg;
    }
    assert_string_equal(cascade_strerror(CASCADE_EINVAL), "invalid argument");
    assert_string_equal(cascade_strerror(-999), "unknown error");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_OK), "OK");
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_DEADLINE_EXCEEDED),
                        "DEADLINE_EXCEEDED");
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED),
                        "RESOURCE_EXHAUSTED");
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(cascade_grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(cascade_grpc_status_name((grpc_status_code)99), "UNKNOWN");
    assert_string_equal(cascade_grpc_status_name((grpc_status_code)-1), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_mapping),
        cmocka_unit_test(test_messages_distinct),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
