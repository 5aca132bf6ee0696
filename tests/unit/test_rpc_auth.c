/* Tests of the RPC runtime's bearer token (common/rpc_server.c,
 * rpc_client.c) with a real in-process gRPC server on a loopback port: a
 * server with a token answers UNAUTHENTICATED to calls without it or with a
 * wrong one (before its handler runs) and serves the right one; the health
 * service stays open; tokens that cannot be a header value are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "clock.h"
#include "error.h"
#include "messages.h"
#include "rpc.h"

#define METHOD "/cascade.v1.Recall/Recall"
#define TOKEN "tok-3f9a1c"

static const struct cascade_rpc_method methods[] = {
    {METHOD, &cascade__v1__recall_request__descriptor, &cascade__v1__recall_response__descriptor,
     test_rpc_count_handler}};

struct fixture {
    cascade_rpc_server *server;
    char target[64];
    cascade_arena *arena;
    atomic_int handler_calls;
};

static int setup(void **state)
{
    static struct fixture f;
    char err[256];
    memset(&f, 0, sizeof(f));
    cascade_rpc_init();
    struct cascade_rpc_server_opts opts = {.listen_addr = "127.0.0.1:0",
                                           .threads = 1,
                                           .service_name = "cascade.v1.Recall",
                                           .auth_token = TOKEN};
    f.server = cascade_rpc_server_create(&opts, methods, 1, &f.handler_calls, err, sizeof(err));
    if (!f.server || cascade_rpc_server_start(f.server, err, sizeof(err)) != 0)
        return -1;
    snprintf(f.target, sizeof(f.target), "127.0.0.1:%d", cascade_rpc_server_port(f.server));
    f.arena = cascade_arena_create(0);
    *state = &f;
    return f.arena ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_rpc_server_destroy(f->server);
    cascade_arena_destroy(f->arena);
    cascade_rpc_shutdown();
    return 0;
}

/* One Recall call to the fixture's server sending `token` (NULL: none);
 * returns its status, message in *message (arena). */
static grpc_status_code call_with(struct fixture *f, const char *token, const char **message)
{
    cascade_rpc_channel *ch = cascade_rpc_channel_create(f->target, 0);
    assert_non_null(ch);
    assert_int_equal(cascade_rpc_channel_set_auth_token(ch, token), 0);
    char *channels[] = {"a"};
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    req.channels = channels;
    req.n_channels = 1;
    struct cascade_rpc_call call = {.channel = ch,
                                    .method = METHOD,
                                    .request = &req.base,
                                    .response_type = &cascade__v1__recall_response__descriptor,
                                    .deadline_ms = cascade_now_ms() + 5000,
                                    .request_id = "auth-test"};
    cascade_rpc_call_unary(&call, f->arena);
    cascade_rpc_channel_destroy(ch);
    if (message)
        *message = call.status_message;
    return call.status;
}

static void test_no_token_is_unauthenticated(void **state)
{
    struct fixture *f = *state;
    const char *message = NULL;
    int before = f->handler_calls;
    assert_int_equal(call_with(f, NULL, &message), GRPC_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(message, "bearer token"));
    assert_int_equal(f->handler_calls, before); /* refused before the handler */
}

static void test_wrong_token_is_unauthenticated(void **state)
{
    struct fixture *f = *state;
    int before = f->handler_calls;
    assert_int_equal(call_with(f, "tok-3f9a1d", NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call_with(f, "tok-3f9a1", NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(call_with(f, TOKEN "0", NULL), GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(f->handler_calls, before);
}

static void test_right_token_is_served(void **state)
{
    struct fixture *f = *state;
    int before = f->handler_calls;
    assert_int_equal(call_with(f, TOKEN, NULL), GRPC_STATUS_OK);
    assert_int_equal(f->handler_calls, before + 1);
}

/* Probes and the orchestrator's readiness checks carry no token. */
static void test_health_needs_no_token(void **state)
{
    struct fixture *f = *state;
    char err[256];
    int serving = 0;
    cascade_rpc_channel *ch = cascade_rpc_channel_create(f->target, 0);
    assert_int_equal(
        cascade_rpc_health_check(ch, "", cascade_now_ms() + 5000, &serving, err, sizeof(err)), 0);
    assert_int_equal(serving, 1);
    cascade_rpc_channel_destroy(ch);
}

static void test_invalid_tokens_refused(void **state)
{
    (void)state;
    char err[256];
    struct cascade_rpc_server_opts opts = {
        .listen_addr = "127.0.0.1:0", .threads = 1, .auth_token = "has space"};
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "auth token"));
    opts.auth_token = "line\nbreak";
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err)));
    char long_token[300];
    memset(long_token, 'a', sizeof(long_token) - 1);
    long_token[sizeof(long_token) - 1] = '\0';
    opts.auth_token = long_token;
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof(err)));

    cascade_rpc_channel *ch = cascade_rpc_channel_create("127.0.0.1:1", 0);
    assert_int_equal(cascade_rpc_channel_set_auth_token(ch, "bad\ttoken"), CASCADE_EINVAL);
    assert_int_equal(cascade_rpc_channel_set_auth_token(ch, long_token), CASCADE_EINVAL);
    assert_int_equal(cascade_rpc_channel_set_auth_token(ch, "ok"), 0);
    assert_int_equal(cascade_rpc_channel_set_auth_token(ch, ""), 0);
    cascade_rpc_channel_destroy(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_token_is_unauthenticated),
        cmocka_unit_test(test_wrong_token_is_unauthenticated),
        cmocka_unit_test(test_right_token_is_served),
        cmocka_unit_test(test_health_needs_no_token),
        cmocka_unit_test(test_invalid_tokens_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
