/* Unit tests for common/redis.c against a private redis-server: commands,
 * binary-safe argv, pipelining, error replies, connection errors that name
 * the address, timeouts, reconnect after a restart, and the per-thread pool. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "error.h"
#include "redis.h"
#include "support.h"

struct fixture {
    struct test_redis server;
    cascade_redis *r;
};

static cascade_redis *connect_to(int port, int command_timeout_ms)
{
    struct cascade_redis_opts o = {
        .host = "127.0.0.1", .port = port, .command_timeout_ms = command_timeout_ms};
    return cascade_redis_create(&o);
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    if (test_redis_start(&f.server) != 0)
        return -1;
    f.r = connect_to(f.server.port, 0);
    *state = &f;
    return f.r ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_redis_destroy(f->r);
    test_redis_stop(&f->server);
    test_redis_stop(&f->server); /* twice is harmless */
    return 0;
}

static void test_parse_addr(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(cascade_redis_parse_addr("10.1.2.3:7000", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.1.2.3");
    assert_int_equal(port, 7000);
    assert_int_equal(cascade_redis_parse_addr(":6380", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6380);
    assert_int_equal(cascade_redis_parse_addr("redis.local", host, sizeof(host), &port), 0);
    assert_string_equal(host, "redis.local");
    assert_int_equal(port, 6379);
    assert_int_equal(cascade_redis_parse_addr("[::1]:7001", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7001);
    assert_int_equal(cascade_redis_parse_addr("h:0", host, sizeof(host), &port), CASCADE_EINVAL);
    assert_int_equal(cascade_redis_parse_addr("h:65536", host, sizeof(host), &port),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_redis_parse_addr("h:12x", host, sizeof(host), &port), CASCADE_EINVAL);
    assert_int_equal(cascade_redis_parse_addr("h:", host, sizeof(host), &port), CASCADE_EINVAL);
    assert_int_equal(cascade_redis_parse_addr("a-very-long-host-name:1", host, 8, &port),
                     CASCADE_EINVAL);
    assert_false(cascade_redis_host_is_unix(host));

    /* unix:/path: the path is the host, port 0. */
    port = 1;
    assert_int_equal(cascade_redis_parse_addr("unix:/run/redis.sock", host, sizeof(host), &port),
                     0);
    assert_string_equal(host, "/run/redis.sock");
    assert_int_equal(port, 0);
    assert_true(cascade_redis_host_is_unix(host));
    port = 5;
    assert_int_equal(cascade_redis_parse_addr("unix:run/redis.sock", host, sizeof(host), &port),
                     CASCADE_EINVAL); /* relative */
    assert_int_equal(cascade_redis_parse_addr("unix:", host, sizeof(host), &port), CASCADE_EINVAL);
    char big[256], long_path[160];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    snprintf(big, sizeof(big), "unix:%s", long_path); /* longer than sun_path */
    char hostbig[256];
    assert_int_equal(cascade_redis_parse_addr(big, hostbig, sizeof(hostbig), &port),
                     CASCADE_EINVAL);
    assert_int_equal(port, 5); /* untouched on failure */
}

/* The same commands over the server's Unix socket; the server sees a Unix
 * client, and the handle names its address as unix:PATH. */
static void test_unix_socket_roundtrip(void **state)
{
    struct fixture *f = *state;
    char host[300];
    int port = -1;
    char addr[310];
    snprintf(addr, sizeof(addr), "unix:%s", f->server.socket);
    assert_int_equal(cascade_redis_parse_addr(addr, host, sizeof(host), &port), 0);
    struct cascade_redis_opts o = {.host = host, .port = port};
    cascade_redis *r = cascade_redis_create(&o);
    assert_non_null(r);
    assert_string_equal(cascade_redis_addr(r), addr);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "SET %s %s", "via-unix", "yes"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->r, &rep, "GET via-unix"), 0); /* seen over TCP */
    assert_string_equal(rep->str, "yes");
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(r, &rep, "CLIENT INFO"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(rep->str, " flags=U")); /* a Unix-socket client */
    freeReplyObject(rep);
    cascade_redis_destroy(r);
}

static void test_unix_socket_missing_names_path(void **state)
{
    struct fixture *f = *state;
    char path[300];
    snprintf(path, sizeof(path), "%s/absent.sock", f->server.dir);
    struct cascade_redis_opts o = {.host = path, .port = 6379};
    cascade_redis *r = cascade_redis_create(&o);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), CASCADE_EUNAVAILABLE);
    assert_null(rep);
    char want[320];
    snprintf(want, sizeof(want), "redis unix:%s: ", path);
    assert_memory_equal(cascade_redis_error(r), want, strlen(want));
    cascade_redis_destroy(r);
}

static void test_command_roundtrip(void **state)
{
    struct fixture *f = *state;
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->r, &rep, "SET %s %s", "greeting", "hello"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->r, &rep, "GET %s", "greeting"), 0);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "hello");
    freeReplyObject(rep);
    assert_string_equal(cascade_redis_error(f->r), "");

    /* argv is binary-safe: embedded NULs survive. */
    const char bin[] = {'a', '\0', 'b', '\xff'};
    const char *argv[] = {"SET", "bin", bin};
    size_t lens[] = {3, 3, sizeof(bin)};
    assert_int_equal(cascade_redis_command_argv(f->r, &rep, 3, argv, lens), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_command(f->r, &rep, "GET bin"), 0);
    assert_int_equal(rep->len, sizeof(bin));
    assert_memory_equal(rep->str, bin, sizeof(bin));
    freeReplyObject(rep);
}

/* The argv formatter writes what hiredis's redisFormatCommandArgv writes:
 * empty, binary and long arguments, argument counts and lengths of every
 * digit count, lengths given or taken with strlen. */
static void check_format_matches_hiredis(int argc, const char **argv, const size_t *lens)
{
    char *want = NULL;
    long long want_len = redisFormatCommandArgv(&want, argc, argv, lens);
    assert_true(want_len > 0);
    size_t len = cascade_redis__format_argv_len(argc, argv, lens);
    assert_int_equal(len, (size_t)want_len);
    char *got = malloc(len);
    assert_non_null(got);
    assert_int_equal(cascade_redis__format_argv(got, argc, argv, lens), len);
    assert_memory_equal(got, want, len);
    free(got);
    redisFreeCommand(want);
}

static void test_argv_format_matches_hiredis(void **state)
{
    (void)state;
    const char bin[] = {'a', '\0', 'b', '\xff', '\r', '\n'};
    const char *argv[] = {"SET", "", bin};
    size_t lens[] = {3, 0, sizeof bin};
    check_format_matches_hiredis(3, argv, lens);
    const char *plain[] = {"GET", "counter"};
    check_format_matches_hiredis(2, plain, NULL);
    check_format_matches_hiredis(1, plain, NULL);
    /* 1,234 arguments of growing length (up to 12,339 bytes: five digits). */
    enum { N = 1234 };
    static const char *many[N];
    static size_t many_lens[N];
    char *text = malloc(12340);
    assert_non_null(text);
    memset(text, 'x', 12340);
    many[0] = "HMGET";
    many_lens[0] = 5;
    for (int i = 1; i < N; i++) {
        many[i] = text;
        many_lens[i] = (size_t)i * 10 % 12340;
    }
    check_format_matches_hiredis(N, many, many_lens);
    free(text);
}

/* A command larger than the formatter's stack buffer (its heap path) and a
 * pipelined one reach Redis intact. */
static void test_large_argv_roundtrip(void **state)
{
    struct fixture *f = *state;
    enum { FIELDS = 3000 };
    static const char *argv[2 + 2 * FIELDS];
    static size_t lens[2 + 2 * FIELDS];
    static char text[FIELDS][16];
    argv[0] = "HSET";
    argv[1] = "big";
    lens[0] = 4;
    lens[1] = 3;
    for (int i = 0; i < FIELDS; i++) {
        lens[2 + 2 * i] = lens[3 + 2 * i] = (size_t)snprintf(text[i], sizeof text[i], "%d", i);
        argv[2 + 2 * i] = argv[3 + 2 * i] = text[i];
    }
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command_argv(f->r, &rep, 2 + 2 * FIELDS, argv, lens), 0);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, FIELDS);
    freeReplyObject(rep);
    /* HMGET big 0 .. FIELDS-1, pipelined: every field answers its own name. */
    argv[0] = "HMGET";
    lens[0] = 5;
    for (int i = 0; i < FIELDS; i++) {
        argv[2 + i] = text[i];
        lens[2 + i] = strlen(text[i]);
    }
    assert_int_equal(cascade_redis_append_argv(f->r, 2 + FIELDS, argv, lens), 0);
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), 0);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, FIELDS);
    for (int i = 0; i < FIELDS; i++)
        assert_string_equal(rep->element[i]->str, text[i]);
    freeReplyObject(rep);
}

static void test_pipelining(void **state)
{
    struct fixture *f = *state;
    redisReply *rep = NULL;
    uint64_t trips = cascade_redis_round_trips(f->r);
    assert_int_equal(cascade_redis_command(f->r, &rep, "DEL counter"), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_round_trips(f->r) - trips, 1);
    for (int i = 0; i < 100; i++)
        assert_int_equal(cascade_redis_append(f->r, "INCR counter"), 0);
    const char *argv[] = {"GET", "counter"};
    assert_int_equal(cascade_redis_append_argv(f->r, 2, argv, NULL), 0);

    /* A plain command while replies are pending would read the wrong reply. */
    assert_int_equal(cascade_redis_command(f->r, &rep, "PING"), CASCADE_EINVAL);
    assert_null(rep);

    for (int i = 1; i <= 100; i++) {
        assert_int_equal(cascade_redis_get_reply(f->r, &rep), 0);
        assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
        assert_int_equal(rep->integer, i); /* replies come back in order */
        freeReplyObject(rep);
    }
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), 0);
    assert_string_equal(rep->str, "100");
    freeReplyObject(rep);
    /* Nothing left to read. */
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), CASCADE_EINVAL);
    /* The DEL, then the 101 commands in one round trip (the refused PING sent nothing). */
    assert_int_equal(cascade_redis_round_trips(f->r) - trips, 2);
}

static void test_error_reply(void **state)
{
    struct fixture *f = *state;
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->r, &rep, "SET onlykey"), CASCADE_EIO);
    assert_null(rep);
    char want[128];
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: ERR wrong number of arguments",
             f->server.port);
    assert_memory_equal(cascade_redis_error(f->r), want, strlen(want));

    /* An error reply inside a pipeline does not disturb the next replies. */
    assert_int_equal(cascade_redis_append(f->r, "SET k v"), 0);
    assert_int_equal(cascade_redis_append(f->r, "INCR k"), 0);
    assert_int_equal(cascade_redis_append(f->r, "GET k"), 0);
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), 0);
    freeReplyObject(rep);
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), CASCADE_EIO);
    assert_non_null(strstr(cascade_redis_error(f->r), "not an integer"));
    assert_int_equal(cascade_redis_get_reply(f->r, &rep), 0);
    assert_string_equal(rep->str, "v");
    freeReplyObject(rep);
}

static void test_bad_format_is_invalid(void **state)
{
    struct fixture *f = *state;
    redisReply *rep = NULL;
    /* hiredis has no %zu; the caller's mistake is EINVAL, not "server down". */
    assert_int_equal(cascade_redis_command(f->r, &rep, "GET %zu", (size_t)1), CASCADE_EINVAL);
    assert_non_null(strstr(cascade_redis_error(f->r), "nvalid format"));
    assert_int_equal(cascade_redis_command(f->r, &rep, "PING"), 0);
    freeReplyObject(rep);
}

static void test_connection_refused_names_address(void **state)
{
    (void)state;
    int port = test_dead_port(); /* nothing listens there */
    cascade_redis *r = connect_to(port, 0);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), CASCADE_EUNAVAILABLE);
    assert_null(rep);
    char want[128];
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: connection refused", port);
    assert_string_equal(cascade_redis_error(r), want);
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    assert_string_equal(cascade_redis_addr(r), want);
    assert_int_equal(cascade_redis_append(r, "PING"), CASCADE_EUNAVAILABLE);
    cascade_redis_destroy(r);
    cascade_redis_destroy(NULL);
}

static void test_command_timeout(void **state)
{
    struct fixture *f = *state;
    cascade_redis *r = connect_to(f->server.port, 100);
    redisReply *rep = NULL;
    /* BLPOP blocks server-side for 2 s; the 100 ms command timeout fires first. */
    assert_int_equal(cascade_redis_command(r, &rep, "BLPOP never-filled 2"), CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(cascade_redis_error(r), "command timed out after 100 ms"));
    /* The broken connection was dropped; the next command reconnects. */
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), 0);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    cascade_redis_destroy(r);
}

/* A deadline shorter than the configured timeout ends the wait: BLPOP blocks
 * server-side for 4 s, the configured timeout is 5 s, the deadline 200 ms. */
static void test_deadline_bounds_command(void **state)
{
    struct fixture *f = *state;
    cascade_redis *r = connect_to(f->server.port, 5000);
    redisReply *rep = NULL;
    int64_t t0 = cascade_now_ms();
    cascade_redis_set_deadline(r, t0 + 200);
    assert_int_equal(cascade_redis_command(r, &rep, "BLPOP never-filled 4"), CASCADE_EUNAVAILABLE);
    assert_true(cascade_now_ms() - t0 < 4000); /* a bound: BLPOP itself would answer at 4 s */
    assert_non_null(strstr(cascade_redis_error(r), "(the request deadline)"));
    /* Without a deadline the handle reconnects and serves again. */
    cascade_redis_set_deadline(r, INT64_MAX);
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), 0);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    cascade_redis_destroy(r);
}

/* Past the deadline nothing is sent (the SET never happens), the error is
 * CASCADE_ETIMEDOUT, and pipelined replies still due are dropped. */
static void test_past_deadline_sends_nothing(void **state)
{
    struct fixture *f = *state;
    cascade_redis *r = connect_to(f->server.port, 0);
    redisReply *rep = NULL;
    cascade_redis_set_deadline(r, cascade_now_ms() - 1);
    assert_int_equal(cascade_redis_command(r, &rep, "SET late-key v"), CASCADE_ETIMEDOUT);
    assert_null(rep);
    assert_non_null(strstr(cascade_redis_error(r), "deadline passed"));
    cascade_redis_set_deadline(r, INT64_MAX);
    assert_int_equal(cascade_redis_append(r, "SET late-key v"), 0);
    cascade_redis_set_deadline(r, cascade_now_ms() - 1);
    assert_int_equal(cascade_redis_get_reply(r, &rep), CASCADE_ETIMEDOUT);
    assert_int_equal(cascade_redis_get_reply(r, &rep), CASCADE_EUNAVAILABLE);
    cascade_redis_set_deadline(NULL, 0); /* NULL-safe */
    cascade_redis_set_deadline(r, INT64_MAX);
    assert_int_equal(cascade_redis_command(r, &rep, "EXISTS late-key"), 0);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    cascade_redis_destroy(r);
}

/* A new pool_get starts without the previous request's deadline. */
static void test_pool_get_clears_deadline(void **state)
{
    struct fixture *f = *state;
    struct cascade_redis_opts o = {.host = "127.0.0.1", .port = f->server.port};
    cascade_redis_pool *pool = cascade_redis_pool_create(&o);
    assert_non_null(pool);
    cascade_redis *r = cascade_redis_pool_get(pool);
    cascade_redis_set_deadline(r, cascade_now_ms() - 1);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), CASCADE_ETIMEDOUT);
    assert_ptr_equal(cascade_redis_pool_get(pool), r);
    assert_int_equal(cascade_redis_command(r, &rep, "PING"), 0);
    freeReplyObject(rep);
    cascade_redis_pool_destroy(pool);
}

static void test_reconnect_after_restart(void **state)
{
    struct fixture *f = *state;
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(f->r, &rep, "SET before restart"), 0);
    freeReplyObject(rep);
    assert_int_equal(test_redis_restart(&f->server), 0);

    /* The old socket is dead: at most one command fails (UNAVAILABLE, naming
     * the server), then the handle reconnects on its own. */
    int rc = cascade_redis_command(f->r, &rep, "GET before");
    if (rc != 0) {
        assert_int_equal(rc, CASCADE_EUNAVAILABLE);
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "redis 127.0.0.1:%d: ", f->server.port);
        assert_memory_equal(cascade_redis_error(f->r), prefix, strlen(prefix));
        rc = cascade_redis_command(f->r, &rep, "GET before");
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rep->type, REDIS_REPLY_NIL); /* a fresh, empty server */
    freeReplyObject(rep);
}

struct pool_probe {
    cascade_redis_pool *pool;
    pthread_barrier_t *all_hold; /* every thread holds its handle at once */
    cascade_redis *first, *second;
    int ping_rc;
};

static void *pool_thread(void *arg)
{
    struct pool_probe *p = arg;
    p->first = cascade_redis_pool_get(p->pool);
    p->second = cascade_redis_pool_get(p->pool);
    redisReply *rep = NULL;
    p->ping_rc = cascade_redis_command(p->first, &rep, "PING");
    freeReplyObject(rep);
    pthread_barrier_wait(p->all_hold);
    return NULL; /* the pool frees this thread's handle as it exits */
}

static void test_pool_per_thread(void **state)
{
    struct fixture *f = *state;
    struct cascade_redis_opts o = {.host = "127.0.0.1", .port = f->server.port};
    cascade_redis_pool *pool = cascade_redis_pool_create(&o);
    pthread_barrier_t all_hold;
    pthread_barrier_init(&all_hold, NULL, 3);
    struct pool_probe a = {.pool = pool, .all_hold = &all_hold};
    struct pool_probe b = a, c = a;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pool_thread, &a);
    pthread_create(&tb, NULL, pool_thread, &b);
    pool_thread(&c); /* this thread too, and it keeps its handle */
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&all_hold);
    assert_non_null(a.first);
    assert_ptr_equal(a.first, a.second); /* same thread, same handle */
    assert_ptr_equal(c.first, cascade_redis_pool_get(pool));
    assert_int_equal(a.ping_rc, 0);
    assert_int_equal(b.ping_rc, 0);
    assert_int_equal(c.ping_rc, 0);
    /* Distinct handles while all three threads held theirs. */
    assert_ptr_not_equal(a.first, b.first);
    assert_ptr_not_equal(c.first, a.first);
    assert_ptr_not_equal(c.first, b.first);
    cascade_redis_pool_destroy(pool);
    cascade_redis_pool_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_command_roundtrip),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_argv_format_matches_hiredis),
        cmocka_unit_test(test_large_argv_roundtrip),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_bad_format_is_invalid),
        cmocka_unit_test(test_connection_refused_names_address),
        cmocka_unit_test(test_unix_socket_roundtrip),
        cmocka_unit_test(test_unix_socket_missing_names_path),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_deadline_bounds_command),
        cmocka_unit_test(test_past_deadline_sends_nothing),
        cmocka_unit_test(test_pool_get_clears_deadline),
        cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_pool_per_thread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
