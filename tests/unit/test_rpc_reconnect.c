/* A client channel must use a restarted server again quickly (issue 9, item 6).
 * The server is stopped and its port taken by a plain TCP listener that
 * accepts and closes, so each of the channel's connection attempts is seen
 * and fails; after three, the server is started again on the same port and
 * the channel must answer within a bounded number of 100 ms attempts. With
 * gRPC's default backoff (1 s, growing 1.6x) the fourth attempt would come
 * at least 2 s later; ours is capped below a second. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "rpc.h"

#define ATTEMPT_MS 100
#define MAX_ATTEMPTS 15 /* 1.5 s: the "within 1 s" plus slack for a loaded machine */

static cascade_rpc_server *start_server(const char *listen_addr)
{
    char err[256] = "";
    struct cascade_rpc_server_opts opts = {.listen_addr = listen_addr, .threads = 1};
    cascade_rpc_server *srv = cascade_rpc_server_create(&opts, NULL, 0, NULL, err, sizeof err);
    if (!srv || cascade_rpc_server_start(srv, err, sizeof err) != 0)
        fail_msg("server on %s: %s", listen_addr, err);
    return srv;
}

/* A listening socket on 127.0.0.1:port that the test accepts on by hand. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static int health(cascade_rpc_channel *ch, int timeout_ms)
{
    char err[256];
    int status = 0;
    return cascade_rpc_health_check(ch, "", cascade_now_ms() + timeout_ms, &status, err,
                                    sizeof err);
}

static void test_restarted_server_is_used_again_quickly(void **state)
{
    (void)state;
    char addr[64];
    cascade_rpc_server *srv = start_server("127.0.0.1:0");
    int port = cascade_rpc_server_port(srv);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    cascade_rpc_channel *ch = cascade_rpc_channel_create(addr, 0);
    assert_non_null(ch);
    assert_int_equal(health(ch, 2000), 0);

    cascade_rpc_server_destroy(srv);
    int lfd = listen_on(port);
    /* Keep calling (as a caller of a dead stage does) and count the channel's
     * connection attempts as they arrive; each one is refused by a close. */
    int seen = 0;
    int64_t give_up = cascade_now_ms() + 20000;
    while (seen < 3 && cascade_now_ms() < give_up) {
        assert_int_not_equal(health(ch, 50), 0);
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 20) == 1) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0) {
                close(c);
                seen++;
            }
        }
    }
    close(lfd);
    assert_int_equal(seen, 3);

    srv = start_server(addr);
    int attempts = 0;
    int rc = -1;
    while (rc != 0 && attempts < MAX_ATTEMPTS) {
        int64_t slot_end = cascade_now_ms() + ATTEMPT_MS;
        rc = health(ch, ATTEMPT_MS);
        attempts++;
        int64_t left = slot_end - cascade_now_ms();
        if (rc != 0 && left > 0) { /* a failed call may return at once: keep the pace */
            struct timespec ts = {0, (long)left * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    print_message("restarted server answered on attempt %d of %d ms each\n", attempts, ATTEMPT_MS);
    assert_int_equal(rc, 0);
    cascade_rpc_channel_destroy(ch);
    cascade_rpc_server_destroy(srv);
}

/* Options are honoured: a channel made with explicit settings works too, and
 * NULL options mean the defaults. */
static void test_channel_opts(void **state)
{
    (void)state;
    char addr[64];
    cascade_rpc_server *srv = start_server("127.0.0.1:0");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", cascade_rpc_server_port(srv));
    struct cascade_rpc_channel_opts o = {
        .initial_backoff_ms = 50, .max_backoff_ms = 200, .connect_timeout_ms = 500};
    cascade_rpc_channel *a = cascade_rpc_channel_create_opts(addr, &o);
    cascade_rpc_channel *b = cascade_rpc_channel_create_opts(addr, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(cascade_rpc_channel_create_opts("", NULL));
    assert_int_equal(health(a, 2000), 0);
    assert_int_equal(health(b, 2000), 0);
    cascade_rpc_channel_destroy(a);
    cascade_rpc_channel_destroy(b);
    cascade_rpc_server_destroy(srv);
}

int main(void)
{
    cascade_rpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restarted_server_is_used_again_quickly),
        cmocka_unit_test(test_channel_opts),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cascade_rpc_shutdown();
    return failed;
}
