/* Fixtures for unit tests: a private redis-server on a free loopback port,
 * started and stopped by the test (no sleeps: readiness is polled with PING),
 * and temporary directories. */
#ifndef CASCADE_TEST_SUPPORT_H
#define CASCADE_TEST_SUPPORT_H

#include <sys/types.h>

struct test_redis {
    pid_t pid;
    int port;
    char dir[256];
};

/* Start redis-server (from PATH) on a free port with a temp dir; returns 0 or -1. */
int test_redis_start(struct test_redis *r);
/* Stop it (SIGTERM, wait) and remove the dir. Safe to call twice. */
void test_redis_stop(struct test_redis *r);

/* Kill the running server (SIGKILL, wait) and start a fresh, empty one on the
 * same port and dir, e.g. to test reconnects. Returns 0 or -1. */
int test_redis_restart(struct test_redis *r);

/* Create a fresh temp directory (mkdtemp) into buf; returns buf or NULL. */
char *test_tempdir(char *buf, size_t len);
/* rm -rf a temp dir made by test_tempdir. */
void test_rmdir(const char *dir);

/* A free TCP port on 127.0.0.1 (bind to port 0, read it back, close). */
int test_free_port(void);

#endif
