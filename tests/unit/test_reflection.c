/* Unit tests for common/reflection.c: the index over the embedded descriptor
 * set (services, methods, fields, enum values, imports), answers and error
 * answers, extensions, and refusal of malformed sets. Small sets are written
 * here byte by byte in the protobuf wire format, so the expected answers do
 * not come from the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <grpc/status.h>

#include "arena.h"
#include "reflection.h"

#define REQ_INIT GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT
#define CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

static const char *const SERVICES[] = {"cascade.v1.Recommender", "grpc.health.v1.Health"};

static cascade_reflection *embedded(void)
{
    char err[256] = "";
    cascade_reflection *r = cascade_reflection_create(cascade_reflection_descriptor_set,
                                                      cascade_reflection_descriptor_set_len,
                                                      SERVICES, 2, err, sizeof err);
    if (!r)
        fail_msg("embedded set refused: %s", err);
    return r;
}

/* True when the serialized FileDescriptorProto starts with field 1 = name
 * (protoc writes the name first). */
static bool file_named(const ProtobufCBinaryData *fd, const char *name)
{
    size_t n = strlen(name);
    return fd->len > n + 2 && fd->data[0] == 0x0a && fd->data[1] == n &&
           memcmp(fd->data + 2, name, n) == 0;
}

static Grpc__Reflection__V1__ServerReflectionResponse *
ask_symbol(cascade_reflection *r, cascade_arena *a, const char *symbol)
{
    Grpc__Reflection__V1__ServerReflectionRequest req = REQ_INIT;
    req.message_request_case = CASE(FILE_CONTAINING_SYMBOL);
    req.file_containing_symbol = (char *)symbol;
    Grpc__Reflection__V1__ServerReflectionResponse *resp = cascade_reflection_answer(r, &req, a);
    assert_non_null(resp);
    return resp;
}

static void test_list_services(void **state)
{
    (void)state;
    cascade_reflection *r = embedded();
    cascade_arena *a = cascade_arena_create(0);
    Grpc__Reflection__V1__ServerReflectionRequest req = REQ_INIT;
    req.host = "h";
    req.message_request_case = CASE(LIST_SERVICES);
    req.list_services = "*";
    Grpc__Reflection__V1__ServerReflectionResponse *resp = cascade_reflection_answer(r, &req, a);
    assert_non_null(resp);
    assert_int_equal(resp->message_response_case, RESP(LIST_SERVICES_RESPONSE));
    assert_int_equal(resp->list_services_response->n_service, 2);
    assert_string_equal(resp->list_services_response->service[0]->name, "cascade.v1.Recommender");
    assert_string_equal(resp->list_services_response->service[1]->name, "grpc.health.v1.Health");
    assert_string_equal(resp->valid_host, "h");
    assert_ptr_equal(resp->original_request, &req);
    cascade_arena_destroy(a);
    cascade_reflection_destroy(r);
}

static void test_symbols_resolve_to_their_file_and_imports(void **state)
{
    (void)state;
    cascade_reflection *r = embedded();
    cascade_arena *a = cascade_arena_create(0);
    static const struct {
        const char *symbol, *file;
    } cases[] = {
        {"cascade.v1.Recommender", "cascade/v1/recommender.proto"},
        {"cascade.v1.Recommender.Recommend", "cascade/v1/recommender.proto"},
        {"cascade.v1.RecommendRequest", "cascade/v1/recommender.proto"},
        {".cascade.v1.RecommendRequest.count", "cascade/v1/recommender.proto"},
        {"cascade.v1.UserContext", "cascade/v1/common.proto"},
        {"cascade.v1.Recall", "cascade/v1/recall.proto"},
        {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"},
        {"grpc.health.v1.HealthCheckResponse.NOT_SERVING", "grpc/health/v1/health.proto"},
        {"grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Grpc__Reflection__V1__ServerReflectionResponse *resp = ask_symbol(r, a, cases[i].symbol);
        if (resp->message_response_case != RESP(FILE_DESCRIPTOR_RESPONSE))
            fail_msg("%s: no file answer", cases[i].symbol);
        const Grpc__Reflection__V1__FileDescriptorResponse *fd = resp->file_descriptor_response;
        if (!file_named(&fd->file_descriptor_proto[0], cases[i].file))
            fail_msg("%s: first file is not %s", cases[i].symbol, cases[i].file);
    }
    /* recommender.proto imports common.proto: both come, the asked one first, each once. */
    Grpc__Reflection__V1__ServerReflectionResponse *resp =
        ask_symbol(r, a, "cascade.v1.Recommender");
    const Grpc__Reflection__V1__FileDescriptorResponse *fd = resp->file_descriptor_response;
    assert_int_equal(fd->n_file_descriptor_proto, 2);
    assert_true(file_named(&fd->file_descriptor_proto[1], "cascade/v1/common.proto"));
    /* A file by its name is the same bytes. */
    Grpc__Reflection__V1__ServerReflectionRequest req = REQ_INIT;
    req.message_request_case = CASE(FILE_BY_FILENAME);
    req.file_by_filename = "cascade/v1/recommender.proto";
    Grpc__Reflection__V1__ServerReflectionResponse *by_name = cascade_reflection_answer(r, &req, a);
    assert_int_equal(by_name->message_response_case, RESP(FILE_DESCRIPTOR_RESPONSE));
    assert_ptr_equal(by_name->file_descriptor_response->file_descriptor_proto[0].data,
                     fd->file_descriptor_proto[0].data);
    cascade_arena_destroy(a);
    cascade_reflection_destroy(r);
}

static void test_unknown_names_are_error_answers(void **state)
{
    (void)state;
    cascade_reflection *r = embedded();
    cascade_arena *a = cascade_arena_create(0);
    const char *unknown[] = {"cascade.v1.Nope", "cascade.v1", "", "cascade.v1.Recommender.Nope"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        Grpc__Reflection__V1__ServerReflectionResponse *resp = ask_symbol(r, a, unknown[i]);
        assert_int_equal(resp->message_response_case, RESP(ERROR_RESPONSE));
        assert_int_equal(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
        assert_non_null(strstr(resp->error_response->error_message, unknown[i]));
    }
    Grpc__Reflection__V1__ServerReflectionRequest req = REQ_INIT; /* asks nothing */
    Grpc__Reflection__V1__ServerReflectionResponse *resp = cascade_reflection_answer(r, &req, a);
    assert_int_equal(resp->message_response_case, RESP(ERROR_RESPONSE));
    assert_int_equal(resp->error_response->error_code, GRPC_STATUS_INVALID_ARGUMENT);
    cascade_arena_destroy(a);
    cascade_reflection_destroy(r);
}

/* A two-file set written by hand:
 *   b.proto: package "p"; message M { message N {} }; extend p.M { e = 100; }
 *   a.proto: imports b.proto; service S { rpc Go } */
/* clang-format off */
static const uint8_t HAND_SET[] = {
    /* file 1: b.proto (35 bytes) */
    0x0a, 35,
    0x0a, 7, 'b', '.', 'p', 'r', 'o', 't', 'o',          /* name */
    0x12, 1, 'p',                                        /* package */
    0x22, 8, 0x0a, 1, 'M', 0x1a, 3, 0x0a, 1, 'N',        /* message M { message N } */
    0x3a, 11, 0x0a, 1, 'e', 0x12, 4, '.', 'p', '.', 'M', /* extension e of .p.M */
    0x18, 100,                                           /*   number 100 */
    /* file 2: a.proto (28 bytes) */
    0x0a, 28,
    0x0a, 7, 'a', '.', 'p', 'r', 'o', 't', 'o',          /* name */
    0x1a, 7, 'b', '.', 'p', 'r', 'o', 't', 'o',          /* dependency */
    0x32, 8, 0x0a, 1, 'S', 0x12, 3, 0x0a, 1, 'G',        /* service S { rpc G } */
};
/* clang-format on */

static void test_hand_written_set(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_reflection *r =
        cascade_reflection_create(HAND_SET, sizeof HAND_SET, NULL, 0, err, sizeof err);
    if (!r)
        fail_msg("hand-written set refused: %s", err);
    cascade_arena *a = cascade_arena_create(0);
    assert_int_equal(cascade_reflection_n_files(r), 2);
    /* M, M.N, e, S, S.G */
    assert_int_equal(cascade_reflection_n_symbols(r), 5);
    Grpc__Reflection__V1__ServerReflectionResponse *resp = ask_symbol(r, a, "S.G");
    assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 2);
    assert_true(file_named(&resp->file_descriptor_response->file_descriptor_proto[0], "a.proto"));
    assert_true(file_named(&resp->file_descriptor_response->file_descriptor_proto[1], "b.proto"));
    resp = ask_symbol(r, a, "p.M.N");
    assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 1);
    assert_true(file_named(&resp->file_descriptor_response->file_descriptor_proto[0], "b.proto"));

    Grpc__Reflection__V1__ServerReflectionRequest req = REQ_INIT;
    req.message_request_case = CASE(ALL_EXTENSION_NUMBERS_OF_TYPE);
    req.all_extension_numbers_of_type = "p.M";
    resp = cascade_reflection_answer(r, &req, a);
    assert_int_equal(resp->message_response_case, RESP(ALL_EXTENSION_NUMBERS_RESPONSE));
    assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 1);
    assert_int_equal(resp->all_extension_numbers_response->extension_number[0], 100);

    Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
    ext.containing_type = "p.M";
    ext.extension_number = 100;
    req.message_request_case = CASE(FILE_CONTAINING_EXTENSION);
    req.file_containing_extension = &ext;
    resp = cascade_reflection_answer(r, &req, a);
    assert_int_equal(resp->message_response_case, RESP(FILE_DESCRIPTOR_RESPONSE));
    assert_true(file_named(&resp->file_descriptor_response->file_descriptor_proto[0], "b.proto"));
    ext.extension_number = 101;
    resp = cascade_reflection_answer(r, &req, a);
    assert_int_equal(resp->message_response_case, RESP(ERROR_RESPONSE));
    assert_int_equal(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    cascade_arena_destroy(a);
    cascade_reflection_destroy(r);
}

static void test_malformed_sets_are_refused(void **state)
{
    (void)state;
    char err[256];
    /* Truncated anywhere inside the first file. */
    for (size_t len = 1; len < 37; len++) {
        err[0] = '\0';
        assert_null(cascade_reflection_create(HAND_SET, len, NULL, 0, err, sizeof err));
        assert_true(strlen(err) > 0);
    }
    /* a.proto alone: its import is missing. */
    err[0] = '\0';
    assert_null(
        cascade_reflection_create(HAND_SET + 37, sizeof HAND_SET - 37, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "a.proto imports b.proto"));
    assert_null(cascade_reflection_create(NULL, 0, NULL, 0, err, sizeof err));
    cascade_reflection_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_services),
        cmocka_unit_test(test_symbols_resolve_to_their_file_and_imports),
        cmocka_unit_test(test_unknown_names_are_error_answers),
        cmocka_unit_test(test_hand_written_set),
        cmocka_unit_test(test_malformed_sets_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
