/* Tests of the RPC runtime's optional TLS (common/rpc_server.c, rpc_client.c)
 * with real in-process gRPC servers on loopback ports and certificates made
 * at test time with openssl (a CA, a server certificate for 127.0.0.1 and
 * localhost, a client certificate, and a second "rogue" CA with its own
 * client certificate): a TLS server refuses a plaintext client and a client
 * that trusts another CA; a client with the right CA gets answers; with client
 * certificates required, a client without one or with one from the rogue CA
 * is refused and one with a certificate from the CA is served. Bad settings
 * (half a key pair, a file that is not PEM) are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "cascade/v1/recall.pb-c.h"
#include "clock.h"
#include "error.h"
#include "messages.h"
#include "rpc.h"
#include "support.h"

#define METHOD "/cascade.v1.Recall/Recall"

static const struct cascade_rpc_method methods[] = {
    {METHOD, &cascade__v1__recall_request__descriptor, &cascade__v1__recall_response__descriptor,
     test_rpc_count_handler}};

struct fixture {
    char dir[256];
    cascade_arena *arena;
    atomic_int handler_calls;
};

static char path_buf[16][512];
static int path_next;

/* dir/name in a rotating static buffer (enough for one test's paths). */
static const char *in_dir(const struct fixture *f, const char *name)
{
    char *p = path_buf[path_next++ % 16];
    snprintf(p, 512, "%s/%s", f->dir, name);
    return p;
}

/* Make the certificates with openssl: ca, server (signed by ca, SAN
 * 127.0.0.1 and localhost), client (signed by ca), rogue_ca and rogue_client
 * (signed by rogue_ca). Returns the shell's exit status. */
static int make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s';"
             "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
             "openssl req -x509 $K -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca;"
             "openssl req -x509 $K -keyout rogue_ca.key -out rogue_ca.crt -days 2 "
             "  -subj /CN=rogue-ca;"
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext;"
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext;"
             "openssl req $K -keyout server.key -out server.csr -subj /CN=localhost;"
             "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "  -out server.crt -days 2 -extfile server.ext;"
             "openssl req $K -keyout client.key -out client.csr -subj /CN=client;"
             "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "  -out client.crt -days 2 -extfile client.ext;"
             "openssl req $K -keyout rogue_client.key -out rogue_client.csr -subj /CN=rogue;"
             "openssl x509 -req -in rogue_client.csr -CA rogue_ca.crt -CAkey rogue_ca.key "
             "  -CAcreateserial -out rogue_client.crt -days 2 -extfile client.ext;"
             "printf 'not a certificate\\n' > junk.pem",
             dir);
    strncat(cmd, " >/dev/null 2>&1", sizeof cmd - strlen(cmd) - 1);
    return system(cmd);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    if (!test_tempdir(f.dir, sizeof f.dir)) {
        fprintf(stderr, "cannot create a temp dir\n");
        return -1;
    }
    if (make_certs(f.dir) != 0) {
        fprintf(stderr, "openssl could not make the test certificates in %s\n", f.dir);
        return -1;
    }
    cascade_rpc_init();
    f.arena = cascade_arena_create(0);
    *state = &f;
    return f.arena ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    cascade_rpc_shutdown();
    test_rmdir(f->dir);
    return 0;
}

/* Start a TLS server with the fixture's server certificate; client_ca (a
 * file name in the dir, or NULL) turns on required client certificates. */
static cascade_rpc_server *start_server(struct fixture *f, const char *client_ca, char *target,
                                        size_t target_len)
{
    char err[700];
    struct cascade_rpc_server_opts opts = {
        .listen_addr = "127.0.0.1:0",
        .threads = 1,
        .service_name = "cascade.v1.Recall",
        .tls_cert_file = in_dir(f, "server.crt"),
        .tls_key_file = in_dir(f, "server.key"),
        .tls_client_ca_file = client_ca ? in_dir(f, client_ca) : NULL,
    };
    cascade_rpc_server *s =
        cascade_rpc_server_create(&opts, methods, 1, &f->handler_calls, err, sizeof err);
    if (!s || cascade_rpc_server_start(s, err, sizeof err) != 0) {
        fprintf(stderr, "server: %s\n", err);
        cascade_rpc_server_destroy(s);
        return NULL;
    }
    snprintf(target, target_len, "127.0.0.1:%d", cascade_rpc_server_port(s));
    return s;
}

/* One Recall call over a channel with the given TLS files (names in the
 * dir; ca NULL = plaintext); returns its status. */
static grpc_status_code call_with(struct fixture *f, const char *target, const char *ca,
                                  const char *cert, const char *key)
{
    char err[700];
    struct cascade_rpc_channel_opts opts = {
        .tls_ca_file = ca ? in_dir(f, ca) : NULL,
        .tls_cert_file = cert ? in_dir(f, cert) : NULL,
        .tls_key_file = key ? in_dir(f, key) : NULL,
    };
    cascade_rpc_channel *ch = cascade_rpc_channel_create_err(target, &opts, err, sizeof err);
    if (!ch)
        fprintf(stderr, "channel: %s\n", err);
    assert_non_null(ch);
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    struct cascade_rpc_call call = {.channel = ch,
                                    .method = METHOD,
                                    .request = &req.base,
                                    .response_type = &cascade__v1__recall_response__descriptor,
                                    .deadline_ms = cascade_now_ms() + 10000,
                                    .request_id = "tls-test"};
    cascade_rpc_call_unary(&call, f->arena);
    cascade_rpc_channel_destroy(ch);
    return call.status;
}

static void test_tls_client_with_ca_is_served(void **state)
{
    struct fixture *f = *state;
    char target[64];
    cascade_rpc_server *s = start_server(f, NULL, target, sizeof target);
    assert_non_null(s);
    int before = f->handler_calls;
    assert_int_equal(call_with(f, target, "ca.crt", NULL, NULL), GRPC_STATUS_OK);
    assert_int_equal(f->handler_calls, before + 1);
    /* The name in the certificate matches localhost too. */
    char local[64];
    snprintf(local, sizeof local, "localhost:%d", cascade_rpc_server_port(s));
    assert_int_equal(call_with(f, local, "ca.crt", NULL, NULL), GRPC_STATUS_OK);
    assert_int_equal(f->handler_calls, before + 2);
    cascade_rpc_server_destroy(s);
}

/* A plaintext client, and one that trusts another CA, never reach the handler. */
static void test_plaintext_and_untrusting_clients_are_refused(void **state)
{
    struct fixture *f = *state;
    char target[64];
    cascade_rpc_server *s = start_server(f, NULL, target, sizeof target);
    assert_non_null(s);
    int before = f->handler_calls;
    assert_int_equal(call_with(f, target, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(call_with(f, target, "rogue_ca.crt", NULL, NULL), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(f->handler_calls, before);
    cascade_rpc_server_destroy(s);
}

static void test_mtls_requires_a_client_cert_from_the_ca(void **state)
{
    struct fixture *f = *state;
    char target[64];
    cascade_rpc_server *s = start_server(f, "ca.crt", target, sizeof target);
    assert_non_null(s);
    int before = f->handler_calls;
    assert_int_equal(call_with(f, target, "ca.crt", NULL, NULL), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(call_with(f, target, "ca.crt", "rogue_client.crt", "rogue_client.key"),
                     GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(call_with(f, target, NULL, NULL, NULL), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(f->handler_calls, before);
    assert_int_equal(call_with(f, target, "ca.crt", "client.crt", "client.key"), GRPC_STATUS_OK);
    assert_int_equal(f->handler_calls, before + 1);
    cascade_rpc_server_destroy(s);
}

static void test_bad_tls_settings_are_refused(void **state)
{
    struct fixture *f = *state;
    char err[700];
    struct cascade_rpc_server_opts opts = {
        .listen_addr = "127.0.0.1:0", .threads = 1, .tls_cert_file = in_dir(f, "server.crt")};
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "--tls-key"));
    opts.tls_key_file = in_dir(f, "junk.pem");
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "not a PEM file"));
    opts.tls_key_file = in_dir(f, "missing.key");
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "missing.key"));
    opts.tls_cert_file = NULL;
    opts.tls_key_file = NULL;
    opts.tls_client_ca_file = in_dir(f, "ca.crt");
    assert_null(cascade_rpc_server_create(&opts, methods, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "--tls-client-ca"));

    struct cascade_rpc_channel_opts copts = {.tls_cert_file = in_dir(f, "client.crt"),
                                             .tls_key_file = in_dir(f, "client.key")};
    assert_null(cascade_rpc_channel_create_err("127.0.0.1:1", &copts, err, sizeof err));
    assert_non_null(strstr(err, "CA"));
    copts.tls_ca_file = in_dir(f, "junk.pem");
    assert_null(cascade_rpc_channel_create_err("127.0.0.1:1", &copts, err, sizeof err));
    assert_non_null(strstr(err, "not a PEM file"));
    copts.tls_ca_file = in_dir(f, "ca.crt");
    copts.tls_key_file = NULL;
    assert_null(cascade_rpc_channel_create_err("127.0.0.1:1", &copts, err, sizeof err));
    assert_non_null(strstr(err, "go together"));
}

static void test_tls_from_env(void **state)
{
    struct fixture *f = *state;
    struct cascade_rpc_channel_opts opts = {0};
    setenv("CASCADE_TLS_CA", in_dir(f, "ca.crt"), 1);
    setenv("CASCADE_TLS_CLIENT_CERT", in_dir(f, "client.crt"), 1);
    unsetenv("CASCADE_TLS_CLIENT_KEY");
    cascade_rpc_channel_opts_tls_from_env(&opts);
    assert_string_equal(opts.tls_ca_file, in_dir(f, "ca.crt"));
    assert_string_equal(opts.tls_cert_file, in_dir(f, "client.crt"));
    assert_null(opts.tls_key_file);
    unsetenv("CASCADE_TLS_CA");
    unsetenv("CASCADE_TLS_CLIENT_CERT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_client_with_ca_is_served),
        cmocka_unit_test(test_plaintext_and_untrusting_clients_are_refused),
        cmocka_unit_test(test_mtls_requires_a_client_cert_from_the_ca),
        cmocka_unit_test(test_bad_tls_settings_are_refused),
        cmocka_unit_test(test_tls_from_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
