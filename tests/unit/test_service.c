/* Tests of the service bootstrap's option handling (common/service.c): defaults,
 * the precedence flag > environment > config file > default, --set overrides,
 * and clear failures for bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service.h"
#include "support.h"

static void clear_env(void)
{
    unsetenv("CASCADE_CONFIG");
    unsetenv("CASCADE_REDIS");
    unsetenv("CASCADE_THREADS");
    unsetenv("CASCADE_NAMESPACE");
    unsetenv("CASCADE_MODEL_DIR");
    unsetenv("CASCADE_LOG_LEVEL");
    unsetenv("CASCADE_RECALL_LISTEN");
    unsetenv("CASCADE_MAX_MESSAGE_BYTES");
    unsetenv("CASCADE_TLS_CERT");
    unsetenv("CASCADE_TLS_CA");
}

static int parse(struct cascade_service_opts *o, int argc, char **argv)
{
    return cascade_service_parse_args("recall", 50051, NULL, argc, argv, o);
}

static void test_defaults(void **state)
{
    (void)state;
    clear_env();
    struct cascade_service_opts o;
    char *argv[] = {"cascade-recall", NULL};
    assert_int_equal(parse(&o, 1, argv), 0);
    assert_string_equal(o.listen, "127.0.0.1:50051");
    assert_string_equal(o.redis_host, "127.0.0.1");
    assert_int_equal(o.redis_port, 6379);
    assert_string_equal(o.ns, "cascade");
    assert_string_equal(o.model_dir, "models");
    assert_int_equal(o.threads, 0);
    assert_int_equal(o.grace_ms, 5000);
    assert_int_equal(o.max_message_bytes, 4 * 1024 * 1024); /* gRPC's usual 4 MiB */
    cascade_service_opts_free(&o);
}

static void write_config(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_precedence(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/c.json", dir);
    write_config(path, "{\"recall\": {\"listen\": \"127.0.0.1:7001\", \"threads\": 3},\n"
                       " \"redis\": {\"addr\": \"10.0.0.1:7000\", \"namespace\": \"fromcfg\"}}\n");
    clear_env();
    struct cascade_service_opts o;

    /* config file beats defaults */
    char *a1[] = {"x", "--config", path, NULL};
    assert_int_equal(parse(&o, 3, a1), 0);
    assert_string_equal(o.listen, "127.0.0.1:7001");
    assert_int_equal(o.threads, 3);
    assert_string_equal(o.redis_host, "10.0.0.1");
    assert_int_equal(o.redis_port, 7000);
    assert_string_equal(o.ns, "fromcfg");
    cascade_service_opts_free(&o);

    /* environment beats the config file */
    setenv("CASCADE_RECALL_LISTEN", "127.0.0.1:7002", 1);
    setenv("CASCADE_THREADS", "5", 1);
    setenv("CASCADE_CONFIG", path, 1);
    char *a2[] = {"x", NULL};
    assert_int_equal(parse(&o, 1, a2), 0);
    assert_string_equal(o.listen, "127.0.0.1:7002");
    assert_int_equal(o.threads, 5);
    cascade_service_opts_free(&o);

    /* flags beat the environment; --set beats the file */
    char *a3[] = {
        "x", "--listen", "127.0.0.1:7003", "--threads", "7", "--set", "redis.namespace=\"fromset\"",
        NULL};
    assert_int_equal(parse(&o, 7, a3), 0);
    assert_string_equal(o.listen, "127.0.0.1:7003");
    assert_int_equal(o.threads, 7);
    assert_string_equal(o.ns, "fromset");
    cascade_service_opts_free(&o);
    clear_env();
    test_rmdir(dir);
}

static void test_bad_values_fail(void **state)
{
    (void)state;
    clear_env();
    struct cascade_service_opts o;
    char *a1[] = {"x", "--threads", "many", NULL};
    assert_true(parse(&o, 3, a1) < 0);
    char *a2[] = {"x", "--redis", "host:notaport", NULL};
    assert_true(parse(&o, 3, a2) < 0);
    char *a3[] = {"x", "--log-level", "loud", NULL};
    assert_true(parse(&o, 3, a3) < 0);
    char *a4[] = {"x", "--no-such-flag", NULL};
    assert_true(parse(&o, 2, a4) < 0);
    char *a5[] = {"x", "--config", "/nonexistent/cascade.json", NULL};
    assert_true(parse(&o, 3, a5) < 0);
    char *a6[] = {"x", "stray", NULL};
    assert_true(parse(&o, 2, a6) < 0);
}

static void test_config_type_error_fails(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/c.json", dir);
    write_config(path, "{\"recall\": {\"threads\": \"lots\"}}\n");
    clear_env();
    struct cascade_service_opts o;
    char *argv[] = {"x", "--config", path, NULL};
    assert_true(parse(&o, 3, argv) < 0);
    test_rmdir(dir);
}

/* The resolved model directory is written back into the config, so stages
 * that read model_dir from it agree with --model-dir / CASCADE_MODEL_DIR. */
static void test_model_dir_reaches_config(void **state)
{
    (void)state;
    clear_env();
    struct cascade_service_opts o;
    char err[256];
    const char *dir = NULL;
    char *argv[] = {"x", "--model-dir", "/srv/models \"v2\"", NULL};
    assert_int_equal(parse(&o, 3, argv), 0);
    assert_string_equal(o.model_dir, "/srv/models \"v2\"");
    assert_int_equal(cascade_config_string(o.config, "model_dir", NULL, &dir, err, sizeof(err)), 0);
    assert_string_equal(dir, "/srv/models \"v2\"");
    cascade_service_opts_free(&o);
    setenv("CASCADE_MODEL_DIR", "/from/env", 1);
    char *argv2[] = {"x", NULL};
    assert_int_equal(parse(&o, 1, argv2), 0);
    assert_int_equal(cascade_config_string(o.config, "model_dir", NULL, &dir, err, sizeof(err)), 0);
    assert_string_equal(dir, "/from/env");
    cascade_service_opts_free(&o);
    clear_env();
}

/* TLS file names: flag > environment > config, unset = "" (plaintext), and
 * the resolved names written back under tls.* (the orchestrator's stage
 * channels read tls.ca_file, tls.client_cert_file, tls.client_key_file). */
static void test_tls_settings(void **state)
{
    (void)state;
    clear_env();
    struct cascade_service_opts o;
    char err[256];
    const char *v = NULL;
    char *argv0[] = {"x", NULL};
    assert_int_equal(parse(&o, 1, argv0), 0);
    assert_string_equal(o.tls_cert, "");
    assert_string_equal(o.tls_ca, "");
    assert_int_equal(cascade_config_string(o.config, "tls.ca_file", "", &v, err, sizeof err), 0);
    assert_string_equal(v, "");
    cascade_service_opts_free(&o);

    setenv("CASCADE_TLS_CERT", "/env/server.crt", 1);
    setenv("CASCADE_TLS_CA", "/env/ca.crt", 1);
    char *argv[] = {"x",
                    "--tls-key",
                    "/f/server.key",
                    "--tls-client-ca",
                    "/f/ca.crt",
                    "--tls-ca",
                    "/f/ca2.crt",
                    "--tls-client-cert",
                    "/f/c.crt",
                    "--tls-client-key",
                    "/f/c.key",
                    "--set",
                    "tls.cert_file=\"/cfg/server.crt\"",
                    NULL};
    assert_int_equal(parse(&o, 13, argv), 0);
    assert_string_equal(o.tls_cert, "/env/server.crt"); /* env beats config */
    assert_string_equal(o.tls_key, "/f/server.key");
    assert_string_equal(o.tls_client_ca, "/f/ca.crt");
    assert_string_equal(o.tls_ca, "/f/ca2.crt"); /* flag beats env */
    assert_string_equal(o.tls_client_cert, "/f/c.crt");
    assert_string_equal(o.tls_client_key, "/f/c.key");
    assert_int_equal(cascade_config_string(o.config, "tls.ca_file", "", &v, err, sizeof err), 0);
    assert_string_equal(v, "/f/ca2.crt");
    assert_int_equal(
        cascade_config_string(o.config, "tls.client_key_file", "", &v, err, sizeof err), 0);
    assert_string_equal(v, "/f/c.key");
    assert_int_equal(cascade_config_string(o.config, "tls.cert_file", "", &v, err, sizeof err), 0);
    assert_string_equal(v, "/env/server.crt");
    cascade_service_opts_free(&o);
    clear_env();
}

/* The request size limit: flag > environment > config > 4 MiB, bad values
 * refused, and the resolved value written back to recall.max_message_bytes
 * (the key the orchestrator's stage channels read). */
static void test_max_message_bytes(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    int64_t v = 0;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/c.json", dir);
    write_config(path, "{\"recall\": {\"max_message_bytes\": 1048576}}\n");
    clear_env();
    struct cascade_service_opts o;

    char *a1[] = {"x", "--config", path, NULL};
    assert_int_equal(parse(&o, 3, a1), 0);
    assert_int_equal(o.max_message_bytes, 1048576);
    cascade_service_opts_free(&o);

    setenv("CASCADE_MAX_MESSAGE_BYTES", "2097152", 1);
    assert_int_equal(parse(&o, 3, a1), 0);
    assert_int_equal(o.max_message_bytes, 2097152);
    cascade_service_opts_free(&o);

    char *a2[] = {"x", "--config", path, "--max-message-bytes", "3145728", NULL};
    assert_int_equal(parse(&o, 5, a2), 0);
    assert_int_equal(o.max_message_bytes, 3145728);
    assert_int_equal(cascade_config_int(o.config, "recall.max_message_bytes", 0, 0, INT64_MAX, &v,
                                        err, sizeof(err)),
                     0);
    assert_int_equal(v, 3145728);
    cascade_service_opts_free(&o);
    clear_env();

    char *bad1[] = {"x", "--max-message-bytes", "lots", NULL};
    assert_true(parse(&o, 3, bad1) < 0);
    char *bad2[] = {"x", "--max-message-bytes", "100", NULL}; /* below 64 KiB */
    assert_true(parse(&o, 3, bad2) < 0);
    char *bad3[] = {"x", "--max-message-bytes", "2147483648", NULL}; /* above 1 GiB */
    assert_true(parse(&o, 3, bad3) < 0);
    test_rmdir(dir);
}

static void test_help_returns_one(void **state)
{
    (void)state;
    clear_env();
    struct cascade_service_opts o;
    char *argv[] = {"x", "--help", NULL};
    assert_int_equal(parse(&o, 2, argv), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_bad_values_fail),
        cmocka_unit_test(test_config_type_error_fails),
        cmocka_unit_test(test_model_dir_reaches_config),
        cmocka_unit_test(test_max_message_bytes),
        cmocka_unit_test(test_tls_settings),
        cmocka_unit_test(test_help_returns_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
