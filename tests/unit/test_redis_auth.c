/* Unit tests for Redis AUTH in common/redis.c against a private redis-server
 * started with --requirepass: no password fails with a message that says a
 * password is needed, a wrong one names the AUTH failure, the right one (and
 * an ACL user) works, the pool authenticates every thread's connection, AUTH
 * is sent again after a reconnect, and the offline tools' environment
 * credentials (CASCADE_REDIS_PASSWORD, CASCADE_REDIS_PASSWORD_FILE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "redis.h"
#include "support.h"

#define PASSWORD "s3cret-pass"

static struct test_redis server;

static int group_setup(void **state)
{
    (void)state;
    return test_redis_start_auth(&server, PASSWORD);
}

static int group_teardown(void **state)
{
    (void)state;
    test_redis_stop(&server);
    return 0;
}

static cascade_redis *connect_as(const char *user, const char *password)
{
    struct cascade_redis_opts o = {.host = "127.0.0.1",
                                   .port = server.port,
                                   .connect_timeout_ms = 1000,
                                   .command_timeout_ms = 2000,
                                   .user = user,
                                   .password = password};
    return cascade_redis_create(&o);
}

/* SET then GET key through r; asserts both work. */
static void assert_set_get(cascade_redis *r, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "SET %s v", key), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(r, &rep, "GET %s", key), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "v");
    freeReplyObject(rep);
}

static void test_no_password_is_refused_clearly(void **state)
{
    (void)state;
    cascade_redis *r = connect_as(NULL, NULL);
    redisReply *rep = NULL;
    assert_int_not_equal(cascade_redis_command(r, &rep, "GET k"), 0);
    assert_null(rep);
    const char *err = cascade_redis_error(r);
    assert_non_null(strstr(err, "NOAUTH"));
    assert_non_null(strstr(err, "CASCADE_REDIS_PASSWORD"));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", server.port);
    assert_non_null(strstr(err, addr));
    cascade_redis_destroy(r);
}

static void test_wrong_password_fails_auth(void **state)
{
    (void)state;
    cascade_redis *r = connect_as(NULL, "not-the-password");
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), CASCADE_EUNAVAILABLE);
    const char *err = cascade_redis_error(r);
    assert_non_null(strstr(err, "AUTH failed"));
    /* The password itself never goes into the message. */
    assert_null(strstr(err, "not-the-password"));
    cascade_redis_destroy(r);
}

static void test_right_password_works(void **state)
{
    (void)state;
    cascade_redis *r = connect_as(NULL, PASSWORD);
    assert_set_get(r, "auth:k1");
    cascade_redis_destroy(r);
}

static void test_acl_user(void **state)
{
    (void)state;
    cascade_redis *admin = connect_as(NULL, PASSWORD);
    redisReply *rep = NULL;
    assert_int_equal(
        cascade_redis_command(admin, &rep, "ACL SETUSER cascade on >userpass ~* +@all"), 0);
    freeReplyObject(rep);
    cascade_redis *r = connect_as("cascade", "userpass");
    assert_set_get(r, "auth:k2");
    assert_int_equal(cascade_redis_command(r, &rep, "ACL WHOAMI"), 0);
    assert_string_equal(rep->str, "cascade");
    freeReplyObject(rep);
    cascade_redis *wrong = connect_as("cascade", PASSWORD);
    assert_int_equal(cascade_redis_command(wrong, &rep, "PING"), CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(cascade_redis_error(wrong), "AUTH failed"));
    cascade_redis_destroy(wrong);
    cascade_redis_destroy(r);
    cascade_redis_destroy(admin);
}

/* The server drops the connection; the next command reconnects, and works
 * only if AUTH is sent again on the new connection. */
static void test_reauth_after_reconnect(void **state)
{
    (void)state;
    cascade_redis *r = connect_as(NULL, PASSWORD);
    cascade_redis *killer = connect_as(NULL, PASSWORD);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "CLIENT SETNAME victim"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(killer, &rep, "CLIENT KILL SKIPME yes TYPE normal"), 0);
    assert_true(rep->integer >= 1);
    freeReplyObject(rep);
    /* The first command may see the dead socket; within two it reconnects. */
    int rc = cascade_redis_command(r, &rep, "CLIENT GETNAME");
    if (rc != 0)
        rc = cascade_redis_command(r, &rep, "CLIENT GETNAME");
    assert_int_equal(rc, 0);
    assert_int_equal(rep->type, REDIS_REPLY_NIL); /* a new connection: no name */
    freeReplyObject(rep);
    assert_set_get(r, "auth:k3");
    cascade_redis_destroy(killer);
    cascade_redis_destroy(r);
}

static void test_pool_copies_credentials(void **state)
{
    (void)state;
    char password[] = PASSWORD;
    struct cascade_redis_opts o = {
        .host = "127.0.0.1", .port = server.port, .command_timeout_ms = 2000, .password = password};
    cascade_redis_pool *p = cascade_redis_pool_create(&o);
    assert_non_null(p);
    memset(password, 'x', strlen(password)); /* the pool must not borrow it */
    assert_set_get(cascade_redis_pool_get(p), "auth:k4");
    cascade_redis_pool_destroy(p);
}

static void test_auth_from_env(void **state)
{
    (void)state;
    char dir[256], path[300], err[512];
    struct cascade_redis_auth auth;
    assert_non_null(test_tempdir(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/pw", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", PASSWORD);
    fclose(f);

    unsetenv("CASCADE_REDIS_PASSWORD");
    unsetenv("CASCADE_REDIS_USER");
    setenv("CASCADE_REDIS_PASSWORD_FILE", path, 1);
    assert_int_equal(cascade_redis_auth_from_env(&auth, err, sizeof(err)), 0);
    assert_string_equal(auth.password, PASSWORD); /* newline stripped */
    assert_string_equal(auth.user, "");
    cascade_redis *r = connect_as(NULL, auth.password);
    assert_set_get(r, "auth:k5");
    cascade_redis_destroy(r);

    /* The value in the environment wins over the file. */
    setenv("CASCADE_REDIS_PASSWORD", "direct", 1);
    assert_int_equal(cascade_redis_auth_from_env(&auth, err, sizeof(err)), 0);
    assert_string_equal(auth.password, "direct");
    unsetenv("CASCADE_REDIS_PASSWORD");

    snprintf(path, sizeof(path), "%s/missing", dir);
    setenv("CASCADE_REDIS_PASSWORD_FILE", path, 1);
    assert_int_equal(cascade_redis_auth_from_env(&auth, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "CASCADE_REDIS_PASSWORD_FILE"));
    assert_non_null(strstr(err, "missing"));
    unsetenv("CASCADE_REDIS_PASSWORD_FILE");

    assert_int_equal(cascade_redis_auth_from_env(&auth, err, sizeof(err)), 0);
    assert_string_equal(auth.password, "");
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_password_is_refused_clearly),
        cmocka_unit_test(test_wrong_password_fails_auth),
        cmocka_unit_test(test_right_password_works),
        cmocka_unit_test(test_acl_user),
        cmocka_unit_test(test_reauth_after_reconnect),
        cmocka_unit_test(test_pool_copies_credentials),
        cmocka_unit_test(test_auth_from_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
