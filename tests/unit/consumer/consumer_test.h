/* Stream entries for the consumer's tests, written the way their producers
 * write them: a Feedback event as the orchestrator's record script XADDs it
 * to {ns}:events, a serve record in the contract's format
 * (docs/closed-loop.md) to {ns}:serves. Static helpers over the test's own
 * connection; cmocka asserts on failure. */
#ifndef CASCADE_TEST_CONSUMER_TEST_H
#define CASCADE_TEST_CONSUMER_TEST_H

#include <stdio.h>
#include <string.h>

#include "redis.h"
#include "store.h"

/* XADD argv[0..argc) (from "XADD" on). */
static inline void consumer_test_xadd(cascade_redis *r, const char **argv, size_t argc)
{
    size_t len[24];
    assert_true(argc <= 24);
    for (size_t i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command_argv(r, &rep, (int)argc, argv, len), 0);
    freeReplyObject(rep);
}

/* Make the group cascade-consumer deliver every entry of stream again
 * (XGROUP SETID 0). */
static inline void consumer_test_redeliver(cascade_redis *r, const char *stream)
{
    redisReply *rep = NULL;
    assert_int_equal(cascade_redis_command(r, &rep, "XGROUP SETID %s cascade-consumer 0", stream),
                     0);
    freeReplyObject(rep);
}

/* A Feedback event of user on item at ts (Unix s); value as text. */
static inline void consumer_test_add_event(cascade_redis *r, const char *ns, const char *user,
                                           uint64_t item, const char *type, const char *value,
                                           long long ts)
{
    char key[CASCADE_KEY_MAX], item_s[24], ts_s[24];
    snprintf(item_s, sizeof item_s, "%llu", (unsigned long long)item);
    snprintf(ts_s, sizeof ts_s, "%lld", ts);
    const char *argv[] = {"XADD", cascade_key_events(key, ns),
                          "*",    "user",
                          user,   "item",
                          item_s, "type",
                          type,   "value",
                          value,  "ts",
                          ts_s,   "rid",
                          "r1",   "eid",
                          "e"};
    consumer_test_xadd(r, argv, sizeof argv / sizeof *argv);
}

/* A serve record of user: items "id:pos:reason:rank:rerank,...", served at
 * ts_ms (Unix ms, as text). */
static inline void consumer_test_add_serve(cascade_redis *r, const char *ns, const char *user,
                                           const char *items, const char *ts_ms)
{
    char key[CASCADE_KEY_MAX];
    const char *argv[] = {"XADD",
                          cascade_key_serves(key, ns),
                          "*",
                          "rid",
                          "req-1",
                          "user",
                          user,
                          "ts_ms",
                          ts_ms,
                          "exp",
                          "rank=baseline@3",
                          "track",
                          "",
                          "deg",
                          "0",
                          "items",
                          items};
    consumer_test_xadd(r, argv, sizeof argv / sizeof *argv);
}

#endif
