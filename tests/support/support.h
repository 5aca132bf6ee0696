/* Fixtures for unit tests: a private redis-server on a free loopback port,
 * started and stopped by the test (no sleeps: readiness is polled with PING),
 * alone or with a connection pool to it, and temporary directories. */
#ifndef CASCADE_TEST_SUPPORT_H
#define CASCADE_TEST_SUPPORT_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>

#include "redis.h"

struct test_redis {
    pid_t pid;
    int port;
    char dir[256];
    char socket[280];  /* its Unix socket, dir/redis.sock (it listens on both) */
    char password[64]; /* "" = no requirepass */
};

/* Start redis-server (from PATH) on a free port with a temp dir; returns 0 or -1. */
int test_redis_start(struct test_redis *r);
/* The same with "--requirepass password" (password at most 63 characters). */
int test_redis_start_auth(struct test_redis *r, const char *password);
/* Stop it (SIGTERM, wait) and remove the dir. Safe to call twice. */
void test_redis_stop(struct test_redis *r);

/* Kill the running server (SIGKILL, wait) and start a fresh, empty one on the
 * same port and dir, e.g. to test reconnects. Returns 0 or -1. */
int test_redis_restart(struct test_redis *r);

/* A private redis-server with a connection pool to it (connect timeout 1 s,
 * command timeout 2 s), as the stage and store tests use it. */
struct test_redis_fixture {
    struct test_redis server;
    cascade_redis_pool *pool;
    cascade_redis *conn; /* the calling thread's connection (owned by pool), for seeding */
};

/* Start the server and open the pool; returns 0 or -1 (nothing left running). */
int test_redis_fixture_start(struct test_redis_fixture *f);
/* Close the pool and stop the server. Safe on a zeroed fixture and twice. */
void test_redis_fixture_stop(struct test_redis_fixture *f);

/* cmocka group setup / teardown for tests that need only the fixture:
 * *state becomes a started struct test_redis_fixture (allocated here, freed
 * by the teardown). Setup returns -1 when the server does not come up. */
int test_redis_group_setup(void **state);
int test_redis_group_teardown(void **state);

/* A pool to a free loopback port where nothing listens (500 ms timeouts), so
 * every command fails CASCADE_EUNAVAILABLE naming 127.0.0.1. Free with
 * cascade_redis_pool_destroy. */
cascade_redis_pool *test_redis_dead_pool(void);

/* Calls of one Redis command so far on r's server (INFO commandstats), e.g.
 * "lrange" or "evalsha"; 0 when it was never called, -1 when INFO fails. */
long long test_redis_command_calls(cascade_redis *r, const char *command);

/* Create a fresh temp directory (mkdtemp) into buf; returns buf or NULL. */
char *test_tempdir(char *buf, size_t len);
/* rm -rf a temp dir made by test_tempdir. */
void test_rmdir(const char *dir);
/* Write text to dir/name (created or truncated); returns 0 or -1. */
int test_write_file(const char *dir, const char *name, const char *text);

/* A free TCP port on 127.0.0.1 (bind to port 0, read it back, close), for
 * a program that cannot bind port 0 and report it (redis-server): another
 * process may take it before the program binds it, so the caller retries on
 * another one (test_redis_start does). */
int test_free_port(void);

/* A port on 127.0.0.1 where nothing listens, for "connection refused" tests:
 * a socket bound to it and never listened on stays open until the process
 * exits, so no other process can start listening there meanwhile (a probed
 * free port could be taken). Returns the port or -1. */
int test_dead_port(void);

/* Invariant violations seen on a test's worker threads (cmocka's asserts
 * may only run on the test's own thread): counted, the first one's message
 * kept. Zero-initialise; read count and first after joining the threads. */
struct test_violations {
    atomic_long count;
    atomic_flag first_taken;
    char first[256];
};
/* Count one violation (thread-safe); the first one's message is kept. */
void test_violation(struct test_violations *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A tool's argument parser adapted for test_parse_argv (opts is its options
 * struct), e.g. a wrapper calling cascade_cli_parse(argc, argv, opts, out, err). */
typedef int (*test_argv_fn)(int argc, char **argv, void *opts, FILE *out, FILE *err);
#define TEST_ARGV_MAX 38
/* Call fn with argv = {prog, the NULL-terminated char * arguments in ap (at
 * most TEST_ARGV_MAX)}, stdout discarded and stderr copied into err_text.
 * Returns what fn returns. */
int test_parse_argv(test_argv_fn fn, void *opts, const char *prog, char *err_text, size_t len,
                    va_list ap);

#endif
