/* Unit tests for common/metrics.c and the --metrics-listen option of
 * common/service.c: exposition format (escaping, histogram buckets),
 * registration rules, exact totals under concurrent updates, and the HTTP
 * endpoint fetched over a real loopback socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "metrics.h"
#include "service.h"

/* ------------------------------------------------------------------ format */

static void test_render_counter_and_gauge(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    assert_non_null(m);
    cascade_metric_family *req =
        cascade_metrics_counter(m, "demo_requests_total",
                                "Requests by channel.\nSecond line \\ backslash", "channel, code");
    cascade_metric_family *temp = cascade_metrics_gauge(m, "demo_temperature", "A gauge.", NULL);
    assert_non_null(req);
    assert_non_null(temp);
    const char *plain[] = {"hot", "OK"};
    const char *nasty[] = {"a\\b\"c\nd", ""};
    cascade_metric *c1 = cascade_metric_get(req, plain);
    cascade_metric *c2 = cascade_metric_get(req, nasty);
    cascade_metric_inc(c1);
    cascade_metric_add(c1, 2.5);
    cascade_metric_inc(c2);
    cascade_metric_set(cascade_metric_get(temp, NULL), -3.25);

    char *text = cascade_metrics_render(m);
    assert_non_null(text);
    assert_string_equal(text, "# HELP demo_requests_total Requests by channel.\\nSecond line \\\\ "
                              "backslash\n"
                              "# TYPE demo_requests_total counter\n"
                              "demo_requests_total{channel=\"hot\",code=\"OK\"} 3.5\n"
                              "demo_requests_total{channel=\"a\\\\b\\\"c\\nd\",code=\"\"} 1\n"
                              "# HELP demo_temperature A gauge.\n"
                              "# TYPE demo_temperature gauge\n"
                              "demo_temperature -3.25\n");
    free(text);
    cascade_metrics_destroy(m);
}

static void test_render_histogram_buckets(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    const double bounds[] = {0.1, 1};
    cascade_metric_family *f =
        cascade_metrics_histogram(m, "demo_latency_seconds", "Latency.", "stage", bounds, 2);
    assert_non_null(f);
    const char *labels[] = {"rank"};
    cascade_metric *h = cascade_metric_get(f, labels);
    cascade_metric_observe(h, 0.05);
    cascade_metric_observe(h, 0.1); /* a bound is inclusive ("le") */
    cascade_metric_observe(h, 0.5);
    cascade_metric_observe(h, 7);
    cascade_metric_observe(h, 0.0 / 0.0); /* NaN is ignored */

    char *text = cascade_metrics_render(m);
    assert_string_equal(text, "# HELP demo_latency_seconds Latency.\n"
                              "# TYPE demo_latency_seconds histogram\n"
                              "demo_latency_seconds_bucket{stage=\"rank\",le=\"0.1\"} 2\n"
                              "demo_latency_seconds_bucket{stage=\"rank\",le=\"1\"} 3\n"
                              "demo_latency_seconds_bucket{stage=\"rank\",le=\"+Inf\"} 4\n"
                              "demo_latency_seconds_sum{stage=\"rank\"} 7.65\n"
                              "demo_latency_seconds_count{stage=\"rank\"} 4\n");
    free(text);

    /* Default buckets, no labels: le labels alone, and the series exists
     * (all zero) before the first observation. */
    cascade_metric_family *d =
        cascade_metrics_histogram(m, "demo_default_seconds", "D.", NULL, NULL, 0);
    assert_non_null(d);
    text = cascade_metrics_render(m);
    assert_non_null(strstr(text, "demo_default_seconds_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(text, "demo_default_seconds_bucket{le=\"0.00025\"} 0\n"));
    assert_non_null(strstr(text, "demo_default_seconds_bucket{le=\"10\"} 0\n"));
    assert_non_null(strstr(text, "demo_default_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(text, "demo_default_seconds_count 0\n"));
    free(text);
    cascade_metrics_destroy(m);
}

static void test_registration_rules(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    cascade_metric_family *a = cascade_metrics_counter(m, "x_total", "X.", "method,code");
    assert_non_null(a);
    /* Same name, type and labels: the same family. */
    assert_ptr_equal(cascade_metrics_counter(m, "x_total", "other help", "method, code"), a);
    /* Same name with another type or other labels is refused. */
    assert_null(cascade_metrics_gauge(m, "x_total", "X.", "method,code"));
    assert_null(cascade_metrics_counter(m, "x_total", "X.", "method"));
    /* Bad names and labels. */
    assert_null(cascade_metrics_counter(m, "9lives", "X.", NULL));
    assert_null(cascade_metrics_counter(m, "has-dash", "X.", NULL));
    assert_null(cascade_metrics_counter(m, NULL, "X.", NULL));
    assert_null(cascade_metrics_counter(m, "y_total", "X.", "le"));
    assert_null(cascade_metrics_counter(m, "y_total", "X.", "__reserved"));
    assert_null(cascade_metrics_counter(m, "y_total", "X.", "a,a"));
    assert_null(cascade_metrics_counter(m, "y_total", "X.", "a,b,c,d,e,f,g,h,i"));
    const double descending[] = {1, 0.5};
    const double infinite[] = {1, 1.0 / 0.0};
    assert_null(cascade_metrics_histogram(m, "h_seconds", "H.", NULL, descending, 2));
    assert_null(cascade_metrics_histogram(m, "h_seconds", "H.", NULL, infinite, 2));
    /* A refused registration left nothing behind. */
    char *text = cascade_metrics_render(m);
    assert_null(strstr(text, "y_total"));
    assert_null(strstr(text, "h_seconds"));
    free(text);

    /* Series: one per label set, created once. */
    const char *v1[] = {"/a", "OK"}, *v2[] = {"/a", "INTERNAL"}, *v1_copy[] = {"/a", "OK"};
    cascade_metric *s1 = cascade_metric_get(a, v1);
    assert_non_null(s1);
    assert_ptr_equal(cascade_metric_get(a, v1_copy), s1);
    assert_ptr_not_equal(cascade_metric_get(a, v2), s1);

    /* Wrong-kind and downward counter updates are ignored. */
    cascade_metric_add(s1, 4);
    cascade_metric_add(s1, -1);
    cascade_metric_set(s1, 100);
    cascade_metric_observe(s1, 1);
    assert_true(cascade_metric_value(s1) == 4.0);
    cascade_metric *g = cascade_metric_get(cascade_metrics_gauge(m, "g", "G.", NULL), NULL);
    cascade_metric_add(g, -2);
    cascade_metric_inc(g);
    assert_true(cascade_metric_value(g) == -1.0);

    /* Without a registry everything is a harmless no-op. */
    assert_null(cascade_metrics_counter(NULL, "z_total", "Z.", NULL));
    assert_null(cascade_metric_get(NULL, NULL));
    cascade_metric_inc(NULL);
    cascade_metric_observe(NULL, 1);
    assert_true(cascade_metric_value(NULL) == 0.0);
    cascade_metrics_destroy(NULL);
    cascade_metrics_destroy(m);
}

/* Many label sets (the table grows several times) stay distinct and findable. */
static void test_many_series(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    cascade_metric_family *f = cascade_metrics_counter(m, "items_total", "Items.", "item");
    cascade_metric *handles[1000];
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "item-%d", i);
        const char *v[] = {name};
        handles[i] = cascade_metric_get(f, v);
        assert_non_null(handles[i]);
        cascade_metric_add(handles[i], i);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "item-%d", i);
        const char *v[] = {name};
        assert_ptr_equal(cascade_metric_get(f, v), handles[i]);
        assert_true(cascade_metric_value(handles[i]) == (double)i);
    }
    char *text = cascade_metrics_render(m);
    assert_non_null(strstr(text, "\nitems_total{item=\"item-0\"} 0\n"));
    assert_non_null(strstr(text, "\nitems_total{item=\"item-999\"} 999\n"));
    free(text);
    cascade_metrics_destroy(m);
}

/* ------------------------------------------------------------- concurrency */

#define THREADS 4
#define PER_THREAD 200000

struct worker_arg {
    cascade_metric_family *counter_family;
    cascade_metric *shared_counter;
    cascade_metric *shared_gauge;
    cascade_metric *shared_histogram;
};

static void *hammer(void *p)
{
    struct worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        cascade_metric_inc(a->shared_counter);
        cascade_metric_add(a->shared_gauge, 1);
        cascade_metric_add(a->shared_gauge, -0.5);
        cascade_metric_observe(a->shared_histogram, (i % 4) * 0.5);
        if (i % 1000 == 0) {
            /* Lookups race with updates and with each other. */
            const char *v[] = {"shared"};
            cascade_metric_inc(cascade_metric_get(a->counter_family, v));
        }
    }
    return NULL;
}

static void test_concurrent_updates_add_up(void **state)
{
    (void)state;
    cascade_metrics *m = cascade_metrics_create();
    cascade_metric_family *cf = cascade_metrics_counter(m, "c_total", "C.", "who");
    const double bounds[] = {0.25, 1};
    cascade_metric_family *hf = cascade_metrics_histogram(m, "h", "H.", NULL, bounds, 2);
    const char *mine[] = {"loop"};
    struct worker_arg arg = {
        .counter_family = cf,
        .shared_counter = cascade_metric_get(cf, mine),
        .shared_gauge = cascade_metric_get(cascade_metrics_gauge(m, "g", "G.", NULL), NULL),
        .shared_histogram = cascade_metric_get(hf, NULL),
    };
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &arg), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    assert_true(cascade_metric_value(arg.shared_counter) == (double)THREADS * PER_THREAD);
    assert_true(cascade_metric_value(arg.shared_gauge) == 0.5 * THREADS * PER_THREAD);
    const char *shared[] = {"shared"};
    assert_true(cascade_metric_value(cascade_metric_get(cf, shared)) ==
                (double)THREADS * (PER_THREAD / 1000));
    /* Each thread observed 0, 0.5, 1, 1.5 in turn: a quarter per value. */
    assert_true(cascade_metric_value(arg.shared_histogram) ==
                THREADS * (PER_THREAD / 4) * (0 + 0.5 + 1 + 1.5));
    char *text = cascade_metrics_render(m);
    char line[128];
    snprintf(line, sizeof(line), "h_bucket{le=\"0.25\"} %d\n", THREADS * PER_THREAD / 4);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof(line), "h_bucket{le=\"1\"} %d\n", THREADS * PER_THREAD * 3 / 4);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof(line), "h_count %d\n", THREADS * PER_THREAD);
    assert_non_null(strstr(text, line));
    free(text);
    cascade_metrics_destroy(m);
}

/* -------------------------------------------------------------------- HTTP */

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0}; /* a hung server fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A plain HTTP/1.0 request; the whole response (headers and body) into a
 * malloc'd string, read until the server closes. */
static char *http_request(int port, const char *method, const char *path)
{
    int fd = connect_loopback(port);
    assert_true(fd >= 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        assert_true(got >= 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void test_serve_metrics_over_http(void **state)
{
    (void)state;
    char err[256] = "";
    cascade_metrics *m = cascade_metrics_create();
    cascade_metric_family *f = cascade_metrics_counter(m, "served_total", "Served.", "path");
    const char *v[] = {"/x"};
    cascade_metric_add(cascade_metric_get(f, v), 42);
    assert_int_equal(cascade_metrics_port(m), 0); /* not served yet */
    int port = cascade_metrics_serve(m, "127.0.0.1:0", err, sizeof(err));
    assert_true(port > 0);
    assert_string_equal(err, "");
    assert_int_equal(cascade_metrics_port(m), port);

    char *resp = http_request(port, "GET", "/metrics");
    assert_true(strncmp(resp, "HTTP/1.", 7) == 0);
    assert_non_null(strstr(resp, " 200 OK\r\n"));
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "# HELP served_total Served.\n"
                                  "# TYPE served_total counter\n"
                                  "served_total{path=\"/x\"} 42\n");
    free(resp);

    /* Updates show in the next scrape. */
    cascade_metric_inc(cascade_metric_get(f, v));
    resp = http_request(port, "GET", "/metrics");
    assert_non_null(strstr(resp, "served_total{path=\"/x\"} 43\n"));
    free(resp);

    resp = http_request(port, "GET", "/other");
    assert_non_null(strstr(resp, " 404 "));
    assert_null(strstr(resp, "served_total"));
    free(resp);
    resp = http_request(port, "POST", "/metrics");
    assert_non_null(strstr(resp, " 405 "));
    free(resp);

    /* A second registry cannot take the same port; one registry serves once. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cascade_metrics *other = cascade_metrics_create();
    assert_true(cascade_metrics_serve(other, addr, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, addr));
    assert_non_null(strstr(err, "in use"));
    cascade_metrics_destroy(other);
    assert_int_equal(cascade_metrics_serve(m, "127.0.0.1:0", err, sizeof(err)), CASCADE_EINVAL);

    /* Destroy stops the endpoint and releases the port. */
    cascade_metrics_destroy(m);
    int fd = connect_loopback(port);
    if (fd >= 0)
        close(fd);
    assert_int_equal(fd, -1);
}

/* One scrape that gives up after about a second without an answer: the whole
 * response, or NULL when the server refused, closed early or did not answer. */
static char *try_scrape(int port)
{
    int fd = connect_loopback(port);
    if (fd < 0)
        return NULL;
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
        goto fail;
    for (;;) {
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got < 0)
            goto fail; /* no answer within the receive timeout */
        if (got == 0)
            break;
        len += (size_t)got;
        if (len + 1 == cap)
            goto fail; /* far larger than this test's registry renders */
    }
    buf[len] = '\0';
    close(fd);
    if (!strstr(buf, " 200 OK\r\n")) {
        free(buf);
        return NULL;
    }
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

/* Idle connections (opened, never used) must not keep a scrape out: with 100
 * of them open, a scrape still answers within a few tries. */
static void test_idle_connections_do_not_block_scrapes(void **state)
{
    (void)state;
    enum { IDLE = 100, TRIES = 3 };
    char err[256] = "";
    int idle[IDLE];
    cascade_metrics *m = cascade_metrics_create();
    cascade_metric_family *f = cascade_metrics_counter(m, "scraped_total", "Scraped.", NULL);
    cascade_metric_add(cascade_metric_get(f, NULL), 7);
    int port = cascade_metrics_serve(m, "127.0.0.1:0", err, sizeof(err));
    assert_true(port > 0);
    for (int i = 0; i < IDLE; i++) {
        idle[i] = connect_loopback(port);
        assert_true(idle[i] >= 0);
    }
    char *resp = NULL;
    for (int i = 0; i < TRIES && !resp; i++)
        resp = try_scrape(port);
    assert_non_null(resp);
    assert_non_null(strstr(resp, "scraped_total 7\n"));
    free(resp);
    for (int i = 0; i < IDLE; i++)
        close(idle[i]);
    cascade_metrics_destroy(m);
}

static void test_serve_rejects_bad_addresses(void **state)
{
    (void)state;
    char err[256];
    cascade_metrics *m = cascade_metrics_create();
    const char *bad[] = {"127.0.0.1",     "127.0.0.1:", "127.0.0.1:70000",
                         "127.0.0.1:80a", "[::1]9100",  "[::1:9100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_true(cascade_metrics_serve(m, bad[i], err, sizeof(err)) < 0);
        assert_non_null(strstr(err, bad[i]));
    }
    cascade_metrics_destroy(m);
}

/* ------------------------------------------------------- --metrics-listen */

static int parse(struct cascade_service_opts *o, const char *a1, const char *a2, const char *a3,
                 const char *a4)
{
    char *argv[] = {"cascade-mtest", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    int argc = 1;
    while (argc < 5 && argv[argc])
        argc++;
    return cascade_service_parse_args("mtest", 50077, NULL, argc, argv, o);
}

static void test_metrics_listen_option(void **state)
{
    (void)state;
    struct cascade_service_opts o;
    unsetenv("CASCADE_MTEST_METRICS_LISTEN");
    unsetenv("CASCADE_MTEST_LISTEN");

    /* Default: the listen host, port + 1000. */
    assert_int_equal(parse(&o, NULL, NULL, NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "127.0.0.1:51077");
    cascade_service_opts_free(&o);
    assert_int_equal(parse(&o, "--listen", "0.0.0.0:40000", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "0.0.0.0:41000");
    cascade_service_opts_free(&o);
    assert_int_equal(parse(&o, "--listen", "[::1]:40000", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "[::1]:41000");
    cascade_service_opts_free(&o);
    /* Listen port 0 (tests): any free port for metrics too. */
    assert_int_equal(parse(&o, "--listen", "127.0.0.1:0", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "127.0.0.1:0");
    cascade_service_opts_free(&o);

    /* Flag > env > config; "off" disables. */
    assert_int_equal(parse(&o, "--set", "mtest.metrics_listen=127.0.0.1:9300", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "127.0.0.1:9300");
    cascade_service_opts_free(&o);
    setenv("CASCADE_MTEST_METRICS_LISTEN", "127.0.0.1:9200", 1);
    assert_int_equal(parse(&o, "--set", "mtest.metrics_listen=127.0.0.1:9300", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "127.0.0.1:9200");
    cascade_service_opts_free(&o);
    assert_int_equal(parse(&o, "--metrics-listen", "OFF", NULL, NULL), 0);
    assert_string_equal(o.metrics_listen, "");
    cascade_service_opts_free(&o);
    unsetenv("CASCADE_MTEST_METRICS_LISTEN");

    /* No default beyond port 65535: the user is told to set one. */
    assert_int_equal(parse(&o, "--listen", "127.0.0.1:65000", NULL, NULL), CASCADE_EINVAL);
    assert_int_equal(parse(&o, "--listen", "127.0.0.1:65000", "--metrics-listen", "off"), 0);
    assert_string_equal(o.metrics_listen, "");
    cascade_service_opts_free(&o);
}

/* cascade_service_metrics serves the registry at the configured address. */
static void test_service_metrics_serves(void **state)
{
    (void)state;
    struct cascade_service_opts o;
    char addr[64];
    /* Port 0: the service binds a free port and the registry reports it (no
     * probe-then-bind race with other processes). */
    assert_int_equal(parse(&o, "--metrics-listen", "127.0.0.1:0", NULL, NULL), 0);
    cascade_metrics *m = cascade_service_metrics(&o);
    assert_non_null(m);
    cascade_service_opts_free(&o);
    int port = cascade_metrics_port(m);
    assert_true(port > 0);
    cascade_metrics_counter(m, "stage_total", "A stage's own counter.", NULL);
    char *resp = http_request(port, "GET", "/metrics");
    assert_non_null(strstr(resp, "\r\n\r\n# HELP stage_total A stage's own counter.\n"));
    assert_non_null(strstr(resp, "\nstage_total 0\n"));
    free(resp);
    /* The address is now taken: a second service on it fails to start. */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(parse(&o, "--metrics-listen", addr, NULL, NULL), 0);
    assert_null(cascade_service_metrics(&o));
    cascade_metrics_destroy(m);
    cascade_service_opts_free(&o);

    /* "off": a registry that records but does not listen. */
    assert_int_equal(parse(&o, "--metrics-listen", "off", NULL, NULL), 0);
    m = cascade_service_metrics(&o);
    assert_non_null(m);
    cascade_metrics_destroy(m);
    cascade_service_opts_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counter_and_gauge),
        cmocka_unit_test(test_render_histogram_buckets),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_concurrent_updates_add_up),
        cmocka_unit_test(test_serve_metrics_over_http),
        cmocka_unit_test(test_idle_connections_do_not_block_scrapes),
        cmocka_unit_test(test_serve_rejects_bad_addresses),
        cmocka_unit_test(test_metrics_listen_option),
        cmocka_unit_test(test_service_metrics_serves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
