/* The Feedback write path: one Lua script records a whole batch of events
 * atomically and idempotently — the stream entry, the last-n push, the
 * consumed add, the live-set add and the dedupe mark of every new event, or
 * nothing at all (docs/redis-keys.md, "Feedback events"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

/* KEYS[1] the stream; then per event i (0-based) KEYS[2+4i ..]: dedupe
 * zset, last-n list, consumed set, live set.
 * ARGV[1] stream MAXLEN, [2] last-n length, [3] dedupe window ms, [4]
 * dedupe zset cap, [5] not-after (Unix ms, 0 = none), [6] event count; then
 * per event ARGV[7+9i ..]: id, user, item, type, value, ts, rid,
 * interaction record ("" = none), live-set member ("" = none).
 * Every check comes before the first write, so an error reply means nothing
 * was written; a script that starts after its caller gave up writes nothing
 * either. Returns the number of events recorded (duplicates are skipped). */
static const char RECORD_SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local not_after = tonumber(ARGV[5])\n"
    "if not_after > 0 and now > not_after then\n"
    "  return redis.error_reply('EXPIRED the batch reached Redis after its deadline')\n"
    "end\n"
    "local n = tonumber(ARGV[6])\n"
    "local function check(key, want)\n"
    "  local ty = redis.call('TYPE', key)['ok']\n"
    "  if ty ~= 'none' and ty ~= want then\n"
    "    error('WRONGTYPE ' .. key .. ' holds a ' .. ty .. ', not a ' .. want)\n"
    "  end\n"
    "end\n"
    "check(KEYS[1], 'stream')\n"
    "for i = 0, n - 1 do\n"
    "  local k, a = 2 + 4 * i, 7 + 9 * i\n"
    "  check(KEYS[k], 'zset')\n"
    "  if ARGV[a + 7] ~= '' then check(KEYS[k + 1], 'list'); check(KEYS[k + 2], 'set') end\n"
    "  if ARGV[a + 8] ~= '' then check(KEYS[k + 3], 'set') end\n"
    "end\n"
    "local window, cap = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local recorded = 0\n"
    "for i = 0, n - 1 do\n"
    "  local k, a = 2 + 4 * i, 7 + 9 * i\n"
    "  local seen, id = KEYS[k], ARGV[a]\n"
    "  if not redis.call('ZSCORE', seen, id) then\n"
    "    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'user', ARGV[a + 1],\n"
    "               'item', ARGV[a + 2], 'type', ARGV[a + 3], 'value', ARGV[a + 4],\n"
    "               'ts', ARGV[a + 5], 'rid', ARGV[a + 6], 'eid', id)\n"
    "    if ARGV[a + 7] ~= '' then\n"
    "      redis.call('LPUSH', KEYS[k + 1], ARGV[a + 7])\n"
    "      redis.call('LTRIM', KEYS[k + 1], 0, tonumber(ARGV[2]) - 1)\n"
    "      redis.call('SADD', KEYS[k + 2], ARGV[a + 2])\n"
    "    end\n"
    "    if ARGV[a + 8] ~= '' then redis.call('SADD', KEYS[k + 3], ARGV[a + 8]) end\n"
    "    redis.call('ZADD', seen, now, id)\n"
    "    redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. (now - window))\n"
    "    redis.call('ZREMRANGEBYRANK', seen, 0, -cap - 1)\n"
    "    redis.call('PEXPIRE', seen, window)\n"
    "    recorded = recorded + 1\n"
    "  end\n"
    "end\n"
    "return recorded\n";

#define KEYS_PER_EVENT 4
#define ARGS_PER_EVENT 9
#define HEAD_ARGS 6

/* The formatted strings and keys of one event (argv points into these). */
struct event_text {
    char keys[KEYS_PER_EVENT][CASCADE_KEY_MAX];
    char item[24], value[32], ts[24], member[24];
    uint8_t record[cascade_v1_Interaction_size];
    size_t record_len;
};

struct script_call {
    const char **argv;
    size_t *argvlen;
    int argc;
    struct event_text *text;
    char head[HEAD_ARGS][24];
    char numkeys[24];
    char stream[CASCADE_KEY_MAX];
};

static void put_arg(struct script_call *c, const char *s, size_t len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc] = len;
    c->argc++;
}

static void put_str(struct script_call *c, const char *s)
{
    put_arg(c, s, strlen(s));
}

static char *live_set_key(char *buf, const char *ns, const struct cascade_store_event *e)
{
    switch (e->live_set) {
    case CASCADE_LIVE_SET_BLOCKED_ITEMS:
        return cascade_key_user_blocked_items(buf, ns, e->user_id);
    case CASCADE_LIVE_SET_BLOCKED_AUTHORS:
        return cascade_key_user_blocked_authors(buf, ns, e->user_id);
    case CASCADE_LIVE_SET_FOLLOWS:
        return cascade_key_user_follows(buf, ns, e->user_id);
    case CASCADE_LIVE_SET_NONE:
        break;
    }
    /* Unused by the script (its member is ""), but KEYS must name a key. */
    return cascade_key_user_feedback_seen(buf, ns, e->user_id);
}

/* Format event i's keys and values into c->text[i]. */
static int format_event(cascade_redis *r, const char *ns, const struct cascade_store_event *e,
                        struct event_text *t)
{
    cascade_key_user_feedback_seen(t->keys[0], ns, e->user_id);
    cascade_key_user_lastn(t->keys[1], ns, e->user_id);
    cascade_key_user_consumed(t->keys[2], ns, e->user_id);
    live_set_key(t->keys[3], ns, e);
    snprintf(t->item, sizeof t->item, "%" PRIu64, e->item_id);
    snprintf(t->value, sizeof t->value, "%g", (double)e->value);
    snprintf(t->ts, sizeof t->ts, "%" PRId64, e->time_s);
    t->member[0] = '\0';
    if (e->live_set != CASCADE_LIVE_SET_NONE)
        snprintf(t->member, sizeof t->member, "%" PRIu64, e->live_set_member);
    t->record_len = 0;
    if (e->interest && cascade_record_encode(cascade_v1_Interaction_fields, &e->interaction,
                                             t->record, sizeof t->record, &t->record_len) != 0) {
        cascade_redis__set_error(r, "%s: interaction does not encode", t->keys[1]);
        return CASCADE_ETOOBIG;
    }
    return 0;
}

/* Build the EVALSHA/EVAL argument vector: slots 0 and 1 (command, script or
 * sha) are left for the caller. */
static int build_call(cascade_redis *r, const char *ns, const struct cascade_store_event *events,
                      size_t n, const struct cascade_store_event_limits *lim, struct script_call *c)
{
    size_t max_args = 4 + KEYS_PER_EVENT * n + HEAD_ARGS + ARGS_PER_EVENT * n;
    c->argv = calloc(max_args, sizeof *c->argv);
    c->argvlen = calloc(max_args, sizeof *c->argvlen);
    c->text = calloc(n ? n : 1, sizeof *c->text);
    if (c->argv == NULL || c->argvlen == NULL || c->text == NULL) {
        cascade_redis__set_error(r, "feedback: out of memory for %zu events", n);
        return CASCADE_ENOMEM;
    }
    c->argc = 2;
    snprintf(c->numkeys, sizeof c->numkeys, "%zu", 1 + KEYS_PER_EVENT * n);
    cascade_key_events(c->stream, ns);
    snprintf(c->head[0], sizeof c->head[0], "%" PRIu32, lim->events_maxlen);
    snprintf(c->head[1], sizeof c->head[1], "%" PRIu32, lim->lastn_max);
    snprintf(c->head[2], sizeof c->head[2], "%" PRId64, lim->dedupe_window_ms);
    snprintf(c->head[3], sizeof c->head[3], "%" PRIu32, lim->dedupe_max);
    snprintf(c->head[4], sizeof c->head[4], "%" PRId64, lim->not_after_ms);
    snprintf(c->head[5], sizeof c->head[5], "%zu", n);
    for (size_t i = 0; i < n; i++) {
        int rc = format_event(r, ns, &events[i], &c->text[i]);
        if (rc)
            return rc;
    }
    put_str(c, c->numkeys);
    put_str(c, c->stream);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < KEYS_PER_EVENT; k++)
            put_str(c, c->text[i].keys[k]);
    for (int h = 0; h < HEAD_ARGS; h++)
        put_str(c, c->head[h]);
    for (size_t i = 0; i < n; i++) {
        const struct cascade_store_event *e = &events[i];
        struct event_text *t = &c->text[i];
        put_str(c, e->event_id);
        put_str(c, e->user_id);
        put_str(c, t->item);
        put_str(c, e->type);
        put_str(c, t->value);
        put_str(c, t->ts);
        put_str(c, e->request_id ? e->request_id : "");
        put_arg(c, (const char *)t->record, t->record_len);
        put_str(c, t->member);
    }
    return 0;
}

static void free_call(struct script_call *c)
{
    free(c->argv);
    free(c->argvlen);
    free(c->text);
}

int cascade_store_script_sha(cascade_redis *r, struct cascade_store_script *s, const char *text,
                             char sha[41])
{
    pthread_mutex_lock(&s->lock);
    snprintf(sha, 41, "%s", s->sha);
    pthread_mutex_unlock(&s->lock);
    if (sha[0])
        return 0;
    redisReply *rep = NULL;
    const char *argv[3] = {"SCRIPT", "LOAD", text};
    const size_t len[3] = {6, 4, strlen(text)};
    int rc = cascade_redis_command_argv(r, &rep, 3, argv, len);
    if (rc)
        return rc;
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        freeReplyObject(rep);
        cascade_redis__set_error(r, "SCRIPT LOAD: unexpected reply");
        return CASCADE_EFORMAT;
    }
    snprintf(sha, 41, "%s", rep->str);
    freeReplyObject(rep);
    pthread_mutex_lock(&s->lock);
    memcpy(s->sha, sha, 41);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

bool cascade_store_noscript(const cascade_redis *r)
{
    /* The handle's message is "redis ADDR: " and Redis's error reply. */
    const char *e = cascade_redis_error(r), *addr = cascade_redis_addr(r);
    size_t n = strlen(addr);
    return strncmp(e, "redis ", 6) == 0 && strncmp(e + 6, addr, n) == 0 &&
           strncmp(e + 6 + n, ": NOSCRIPT ", 11) == 0;
}

int cascade_store_eval(cascade_redis *r, struct cascade_store_script *s, const char *text, int argc,
                       const char **argv, size_t *argvlen, redisReply **reply)
{
    char sha[41] = "";
    *reply = NULL;
    int rc = cascade_store_script_sha(r, s, text, sha);
    if (rc)
        return rc;
    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = sha;
    argvlen[1] = 40;
    rc = cascade_redis_command_argv(r, reply, argc, argv, argvlen);
    if (rc == CASCADE_EIO && cascade_store_noscript(r)) {
        /* Redis restarted or its script cache was flushed since SCRIPT LOAD. */
        argv[0] = "EVAL";
        argvlen[0] = 4;
        argv[1] = text;
        argvlen[1] = strlen(text);
        rc = cascade_redis_command_argv(r, reply, argc, argv, argvlen);
    }
    return rc;
}

int cascade_store_record_events(cascade_redis *r, const char *ns,
                                const struct cascade_store_event *events, size_t n,
                                const struct cascade_store_event_limits *lim,
                                struct cascade_store_script *script, size_t *recorded)
{
    struct script_call c = {0};
    redisReply *rep = NULL;
    int rc;
    *recorded = 0;
    if (n == 0)
        return 0;
    if (lim->lastn_max == 0 || lim->dedupe_window_ms <= 0 || lim->dedupe_max == 0) {
        cascade_redis__set_error(r, "record_events: lastn_max, dedupe window and cap must be "
                                    "positive");
        return CASCADE_EINVAL;
    }
    if ((rc = build_call(r, ns, events, n, lim, &c)) ||
        (rc = cascade_store_eval(r, script, RECORD_SCRIPT, c.argc, c.argv, c.argvlen, &rep)))
        goto out;
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 0 || (size_t)rep->integer > n) {
        cascade_redis__set_error(r, "%s: unexpected reply from the record script", c.stream);
        rc = CASCADE_EFORMAT;
        goto out;
    }
    *recorded = (size_t)rep->integer;
out:
    if (rep)
        freeReplyObject(rep);
    free_call(&c);
    return rc;
}
