/* Tests of Feedback's bounds, idempotence and atomicity against a private
 * redis-server: every out-of-bounds field is refused naming the field and
 * the event index; the same events sent twice are recorded once (stream,
 * last-n, consumed, live sets); a batch that fails in Redis leaves nothing;
 * a batch sent while Redis is frozen leaves nothing once Redis resumes, and
 * its retry is recorded exactly once. (Feedback's effects on each key are
 * tested in test_recommend.c.) */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "orchestrator.h"
#include "store.h"
#include "support.h"

struct fixture {
    struct test_redis redis;
    cascade_redis_pool *pool; /* 300 ms command timeout, for the orchestrator */
    cascade_redis *r;         /* the test's own connection, for checks */
    cascade_arena *arena;
    cascade_orch *orch; /* feedback.timeout_ms 100 */
};

static struct fixture fx;

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    cascade_rpc_init();
    if (test_redis_start(&fx.redis) != 0)
        return -1;
    struct cascade_redis_opts opts = {.host = "127.0.0.1",
                                      .port = fx.redis.port,
                                      .connect_timeout_ms = 500,
                                      .command_timeout_ms = 300};
    struct cascade_redis_opts check = {.host = "127.0.0.1",
                                       .port = fx.redis.port,
                                       .connect_timeout_ms = 500,
                                       .command_timeout_ms = 2000};
    fx.pool = cascade_redis_pool_create(&opts);
    fx.r = cascade_redis_create(&check);
    fx.arena = cascade_arena_create(0);
    cascade_config *cfg = cascade_config_parse(
        "{\"orchestrator\": {\"feedback\": {\"timeout_ms\": 100, \"lastn_max\": 50}}}", "test.json",
        err, sizeof err);
    if (cfg == NULL)
        return -1;
    fx.orch = cascade_orch_create(cfg, fx.pool, "fb", NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    if (fx.orch == NULL)
        fprintf(stderr, "orchestrator: %s\n", err);
    return fx.pool && fx.r && fx.arena && fx.orch ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cascade_orch_destroy(fx.orch);
    cascade_arena_destroy(fx.arena);
    cascade_redis_destroy(fx.r);
    cascade_redis_pool_destroy(fx.pool);
    test_redis_stop(&fx.redis);
    cascade_rpc_shutdown();
    return 0;
}

static int feedback(Cascade__V1__Event **events, size_t n, char *err, size_t errlen)
{
    Cascade__V1__FeedbackRequest req = CASCADE__V1__FEEDBACK_REQUEST__INIT;
    Cascade__V1__FeedbackResponse *resp = NULL;
    req.events = events;
    req.n_events = n;
    cascade_arena_reset(fx.arena);
    struct cascade_orch_call call = {
        .arena = fx.arena, .deadline_ms = INT64_MAX, .err = err, .errlen = errlen};
    err[0] = '\0';
    int rc = cascade_orch_feedback(fx.orch, &call, &req, &resp);
    if (rc == 0) {
        assert_non_null(resp);
        assert_int_equal(resp->accepted, n);
    }
    return rc;
}

static long long integer_of(const char *fmt, const char *key)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(fx.r, &rep, fmt, key), 0);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static long long stream_length(void)
{
    char key[CASCADE_KEY_MAX];
    return integer_of("XLEN %s", cascade_key_events(key, "fb"));
}

static long long lastn_length(const char *user)
{
    char key[CASCADE_KEY_MAX];
    return integer_of("LLEN %s", cascade_key_user_lastn(key, "fb", user));
}

static long long consumed_size(const char *user)
{
    char key[CASCADE_KEY_MAX];
    return integer_of("SCARD %s", cascade_key_user_consumed(key, "fb", user));
}

static Cascade__V1__Event event(const char *user, uint64_t item, Cascade__V1__EventType type)
{
    Cascade__V1__Event e = CASCADE__V1__EVENT__INIT;
    e.user_id = (char *)user;
    e.item_id = item;
    e.type = type;
    return e;
}

#define CLICK CASCADE__V1__EVENT_TYPE__EVENT_TYPE_CLICK
#define LIKE CASCADE__V1__EVENT_TYPE__EVENT_TYPE_LIKE
#define PLAY CASCADE__V1__EVENT_TYPE__EVENT_TYPE_PLAY
#define DISLIKE CASCADE__V1__EVENT_TYPE__EVENT_TYPE_DISLIKE

/* Send [ok, bad] and expect INVALID_ARGUMENT naming events[1].<what>. */
static void expect_refused(Cascade__V1__Event *bad, const char *message)
{
    Cascade__V1__Event ok = event("bounds", 1, CLICK);
    Cascade__V1__Event *events[2] = {&ok, bad};
    char err[512];
    assert_int_equal(feedback(events, 2, err, sizeof err), CASCADE_EINVAL);
    if (strstr(err, message) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", message, err);
}

static void test_bounds(void **state)
{
    (void)state;
    char long_rid[80], long_user[80], err[512];
    long long before = stream_length();
    memset(long_rid, 'r', 65);
    long_rid[65] = '\0';
    memset(long_user, 'u', 65);
    long_user[65] = '\0';

    Cascade__V1__Event e = event("bounds", 2, PLAY);
    e.request_id = long_rid;
    expect_refused(&e, "events[1].request_id must be at most 64 characters");
    e.request_id = "abc def";
    expect_refused(&e, "events[1].request_id must be at most 64 characters of [A-Za-z0-9._:-]");
    e.request_id = "abc\ndef";
    expect_refused(&e, "events[1].request_id must be at most 64 characters of [A-Za-z0-9._:-]");
    e.request_id = "";

    e.user_id = long_user;
    expect_refused(&e, "events[1].user_id is longer than 64 bytes");
    e.user_id = "ab\xff";
    expect_refused(&e, "events[1].user_id is not valid UTF-8");
    e.user_id = "\xc0\xaf"; /* an overlong "/" */
    expect_refused(&e, "events[1].user_id is not valid UTF-8");
    e.user_id = "\xed\xa0\x80"; /* a surrogate */
    expect_refused(&e, "events[1].user_id is not valid UTF-8");
    e.user_id = "x\xe2\x82"; /* truncated */
    expect_refused(&e, "events[1].user_id is not valid UTF-8");
    e.user_id = "a\x1b[31mERROR";
    expect_refused(&e, "events[1].user_id has a control character at byte 1");
    e.user_id = "bounds";

    e.value = NAN;
    expect_refused(&e, "events[1].value nan is outside");
    e.value = INFINITY;
    expect_refused(&e, "events[1].value inf is outside");
    e.value = -1.0f;
    expect_refused(&e, "events[1].value -1 is outside");
    e.value = 2e6f;
    expect_refused(&e, "events[1].value 2e+06 is outside");
    e.value = 10.0f;

    e.time_s = -1;
    expect_refused(&e, "events[1].time_s -1 is outside");
    e.time_s = cascade_wall_s() + 3600;
    expect_refused(&e, "events[1].time_s");
    e.time_s = cascade_wall_s() - 400LL * 86400;
    expect_refused(&e, "events[1].time_s");
    e.time_s = 0;

    e.type = (Cascade__V1__EventType)0;
    expect_refused(&e, "events[1].type: unknown event type 0");
    e.type = PLAY;
    e.item_id = 0;
    expect_refused(&e, "events[1].item_id is 0");
    e.item_id = 2;
    expect_refused(NULL, "events[1] is missing");
    assert_int_equal(stream_length(), before); /* nothing of a refused call is written */

    /* Too many events: refused as a whole (RESOURCE_EXHAUSTED). */
    size_t n = CASCADE_ORCH_MAX_EVENTS + 1;
    Cascade__V1__Event **many = calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++)
        many[i] = &e;
    assert_int_equal(feedback(many, n, err, sizeof err), CASCADE_ETOOBIG);
    assert_non_null(strstr(err, "events: at most 1000 events"));
    free(many);

    /* The limits themselves are accepted: 64-byte ids (a multi-byte UTF-8
     * user id), the largest value, a time at the window's edges. */
    char rid64[65], user64[65];
    memset(rid64, 'a', 64);
    rid64[64] = '\0';
    memset(user64, 'b', 64);
    memcpy(user64, "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 9); /* é 日 😀 */
    user64[64] = '\0';
    e.request_id = rid64;
    e.user_id = user64;
    e.value = 1e6f;
    e.time_s = cascade_wall_s() - 365LL * 86400;
    Cascade__V1__Event *one[1] = {&e};
    assert_int_equal(feedback(one, 1, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 1);
}

/* The same events twice are recorded once; an event repeated inside one
 * call too; an event with a different time is a different event. */
static void test_idempotent(void **state)
{
    (void)state;
    char err[512], blocked[CASCADE_KEY_MAX], seen[CASCADE_KEY_MAX];
    Cascade__V1__Event like = event("idem", 10, LIKE), click = event("idem", 11, CLICK),
                       dislike = event("idem", 12, DISLIKE), play = event("idem", 13, PLAY);
    like.time_s = cascade_wall_s() - 60;
    like.request_id = "req-1";
    play.value = 42.0f;
    Cascade__V1__Event *events[5] = {&like, &click, &dislike, &play, &click};
    long long before = stream_length();

    assert_int_equal(feedback(events, 5, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 4); /* the repeated click once */
    assert_int_equal(lastn_length("idem"), 2);
    assert_int_equal(consumed_size("idem"), 2);
    cascade_key_user_blocked_items(blocked, "fb", "idem");
    assert_int_equal(integer_of("SCARD %s", blocked), 1);
    cascade_key_user_feedback_seen(seen, "fb", "idem");
    assert_int_equal(integer_of("ZCARD %s", seen), 4);
    long long ttl = integer_of("PTTL %s", seen);
    assert_true(ttl > 0 && ttl <= 86400LL * 1000);

    /* The retry: accepted, nothing new. */
    assert_int_equal(feedback(events, 5, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 4);
    assert_int_equal(lastn_length("idem"), 2);
    assert_int_equal(consumed_size("idem"), 2);
    assert_int_equal(integer_of("ZCARD %s", seen), 4);

    /* Any field changed makes a new event. */
    like.time_s += 1;
    play.value = 43.0f;
    assert_int_equal(feedback(events, 2, err, sizeof err), 0); /* like (new), click (seen) */
    assert_int_equal(stream_length(), before + 5);
    assert_int_equal(lastn_length("idem"), 3);
    Cascade__V1__Event *plays[1] = {&play};
    assert_int_equal(feedback(plays, 1, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 6);
}

/* A batch whose last event cannot be written (its user's last-n key holds a
 * string) fails as a whole: the events before it leave nothing either. */
static void test_failed_batch_leaves_nothing(void **state)
{
    (void)state;
    char err[512], key[CASCADE_KEY_MAX], seen[CASCADE_KEY_MAX];
    redisReply *rep = NULL;
    cascade_key_user_lastn(key, "fb", "broken");
    assert_int_equal(cascade_redis_command(fx.r, &rep, "SET %s not-a-list", key), 0);
    freeReplyObject(rep);
    Cascade__V1__Event a = event("atomic", 20, LIKE), b = event("atomic", 21, DISLIKE),
                       c = event("broken", 22, CLICK);
    Cascade__V1__Event *events[3] = {&a, &b, &c};
    long long before = stream_length();
    assert_int_not_equal(feedback(events, 3, err, sizeof err), 0);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_non_null(strstr(err, "feedback: recording the events"));
    assert_int_equal(stream_length(), before);
    assert_int_equal(lastn_length("atomic"), 0);
    assert_int_equal(consumed_size("atomic"), 0);
    cascade_key_user_blocked_items(key, "fb", "atomic");
    assert_int_equal(integer_of("EXISTS %s", key), 0);
    cascade_key_user_feedback_seen(seen, "fb", "atomic");
    assert_int_equal(integer_of("EXISTS %s", seen), 0);
    /* Without the broken event the same two are recorded. */
    assert_int_equal(feedback(events, 2, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 2);
}

/* Redis frozen (SIGSTOP) while a batch is in flight: the call answers
 * UNAVAILABLE after the 300 ms command timeout; when Redis resumes it runs
 * the batch it had received, which finds its 100 ms feedback.timeout_ms
 * passed and writes nothing; the retry then records each event once. */
static void test_redis_frozen(void **state)
{
    (void)state;
    char err[512];
    Cascade__V1__Event warm = event("frozen", 30, CLICK);
    Cascade__V1__Event a = event("frozen", 31, LIKE), b = event("frozen", 32, CLICK);
    Cascade__V1__Event *first[1] = {&warm}, *events[2] = {&a, &b};
    assert_int_equal(feedback(first, 1, err, sizeof err), 0); /* the script is loaded */
    long long before = stream_length();

    assert_int_equal(kill(fx.redis.pid, SIGSTOP), 0);
    int rc = feedback(events, 2, err, sizeof err);
    assert_int_equal(kill(fx.redis.pid, SIGCONT), 0);
    assert_int_equal(rc, CASCADE_EUNAVAILABLE);
    assert_non_null(strstr(err, "feedback: recording the events"));

    /* Redis reads the stale batch before this later command. */
    assert_int_equal(stream_length(), before);
    assert_int_equal(lastn_length("frozen"), 1);

    assert_int_equal(feedback(events, 2, err, sizeof err), 0); /* the retry */
    assert_int_equal(feedback(events, 2, err, sizeof err), 0); /* and a second one */
    assert_int_equal(stream_length(), before + 2);
    assert_int_equal(lastn_length("frozen"), 3);
    assert_int_equal(consumed_size("frozen"), 3);
}

/* Redis lost the script (SCRIPT FLUSH, or a restart): EVAL takes over. */
static void test_script_flushed(void **state)
{
    (void)state;
    char err[512];
    redisReply *rep = NULL;
    Cascade__V1__Event a = event("flushed", 40, CLICK);
    Cascade__V1__Event *events[1] = {&a};
    assert_int_equal(feedback(events, 1, err, sizeof err), 0);
    assert_int_equal(cascade_redis_command(fx.r, &rep, "SCRIPT FLUSH"), 0);
    freeReplyObject(rep);
    long long before = stream_length();
    a.item_id = 41;
    assert_int_equal(feedback(events, 1, err, sizeof err), 0);
    assert_int_equal(feedback(events, 1, err, sizeof err), 0);
    assert_int_equal(stream_length(), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_failed_batch_leaves_nothing),
        cmocka_unit_test(test_redis_frozen),
        cmocka_unit_test(test_script_flushed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
