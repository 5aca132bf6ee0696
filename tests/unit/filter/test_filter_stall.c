/* A frozen Redis (SIGSTOP) must not hold a Filter call past its deadline: with
 * a 5 s configured command timeout and a 300 ms deadline, both Filter and
 * RecordExposure return UNAVAILABLE well before the configured timeout, and
 * the stage works again once Redis is thawed. Issue 9, item 5. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "filter.h"
#include "messages.h"
#include "support.h"

#define NS "t"
#define T0 ((int64_t)1750000000)
#define COMMAND_TIMEOUT_MS 5000
#define DEADLINE_MS 300

struct fixture {
    struct test_redis server;
    cascade_redis_pool *pool;
    cascade_filter *filter;
    cascade_arena *arena;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_start(&f.server) != 0)
        return -1;
    struct cascade_redis_opts o = {.host = "127.0.0.1",
                                   .port = f.server.port,
                                   .connect_timeout_ms = COMMAND_TIMEOUT_MS,
                                   .command_timeout_ms = COMMAND_TIMEOUT_MS};
    f.pool = cascade_redis_pool_create(&o);
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse("{}", "test", err, sizeof err);
    if (f.pool && cfg)
        f.filter = cascade_filter_create(cfg, f.pool, NS, NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    f.arena = cascade_arena_create(0);
    return f.filter && f.arena ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->server.pid > 0)
        kill(f->server.pid, SIGCONT); /* in case a failed assertion left it frozen */
    cascade_arena_destroy(f->arena);
    cascade_filter_destroy(f->filter);
    cascade_redis_pool_destroy(f->pool);
    test_redis_stop(&f->server);
    return 0;
}

static Cascade__V1__FilterRequest *filter_request(cascade_arena *a, const uint64_t *ids, size_t n)
{
    Cascade__V1__FilterRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__filter_request__init(req);
    req->user = test_user_context(a, "u1", T0);
    req->n_candidates = n;
    req->candidates = test_candidates(a, ids, n);
    return req;
}

static Cascade__V1__RecordExposureRequest *record_request(cascade_arena *a, const uint64_t *ids,
                                                          size_t n)
{
    Cascade__V1__RecordExposureRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__record_exposure_request__init(req);
    req->user_id = cascade_arena_strdup(a, "u1");
    req->n_item_ids = n;
    req->item_ids = cascade_arena_calloc(a, n + 1, sizeof *req->item_ids);
    memcpy(req->item_ids, ids, n * sizeof *ids);
    req->time_s = T0;
    return req;
}

/* One Filter call with a DEADLINE_MS budget; *elapsed_ms is how long it took. */
static int filter_once(struct fixture *f, int64_t *elapsed_ms, char *err, size_t errlen)
{
    const uint64_t ids[] = {1, 2, 3};
    Cascade__V1__FilterResponse *resp = NULL;
    int64_t t0 = cascade_now_ms();
    int rc = cascade_filter_run(f->filter, f->arena, t0 + DEADLINE_MS,
                                filter_request(f->arena, ids, 3), &resp, err, errlen);
    *elapsed_ms = cascade_now_ms() - t0;
    return rc;
}

static void test_frozen_redis_is_bounded_by_the_deadline(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    int64_t elapsed_ms = 0;
    /* Healthy first, so the thread's connection is open when Redis freezes. */
    assert_int_equal(filter_once(f, &elapsed_ms, err, sizeof err), 0);

    assert_int_equal(kill(f->server.pid, SIGSTOP), 0);
    int rc = filter_once(f, &elapsed_ms, err, sizeof err);
    const uint64_t ids[] = {7};
    Cascade__V1__RecordExposureResponse *rresp = NULL;
    char rerr[512] = "";
    int64_t t0 = cascade_now_ms();
    int rrc = cascade_filter_record(f->filter, f->arena, t0 + DEADLINE_MS,
                                    record_request(f->arena, ids, 1), &rresp, rerr, sizeof rerr);
    int64_t record_elapsed_ms = cascade_now_ms() - t0;
    assert_int_equal(kill(f->server.pid, SIGCONT), 0);

    /* The answer is an error a caller can act on, and it came back before the
     * configured 5 s timeout could have fired: only the deadline ended it. */
    assert_true(elapsed_ms < COMMAND_TIMEOUT_MS);
    assert_true(rc == CASCADE_EUNAVAILABLE || rc == CASCADE_ETIMEDOUT);
    assert_non_null(strstr(err, "request deadline"));
    assert_true(rrc == CASCADE_EUNAVAILABLE || rrc == CASCADE_ETIMEDOUT);
    assert_true(record_elapsed_ms < COMMAND_TIMEOUT_MS);

    /* Thawed, the next call reconnects and succeeds. */
    assert_int_equal(filter_once(f, &elapsed_ms, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_redis_is_bounded_by_the_deadline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
