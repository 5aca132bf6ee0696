/* Pipelined Redis reads for the Recall channels: queue a step's commands,
 * read the replies in order, keep the first failure (with its message, which
 * later successful replies would otherwise clear) and always drain what was
 * queued. Reply readers turn sorted sets, neighbour lists and last-n lists
 * into arena arrays. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "recall_internal.h"

void cascade_recall__pipe_init(struct cascade_recall__pipe *p, cascade_redis *redis)
{
    p->redis = redis;
    p->queued = 0;
    p->rc = 0;
    p->msg[0] = '\0';
}

static void pipe_redis_failed(struct cascade_recall__pipe *p, int rc)
{
    if (p->rc == 0) {
        p->rc = rc;
        snprintf(p->msg, sizeof p->msg, "%s", cascade_redis_error(p->redis));
    }
}

void cascade_recall__pipe_fail(struct cascade_recall__pipe *p, int rc, const char *fmt, ...)
{
    if (p->rc != 0)
        return;
    p->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
}

void cascade_recall__pipe_argv(struct cascade_recall__pipe *p, int argc, const char **argv,
                               const size_t *lens)
{
    if (p->rc != 0)
        return;
    int rc = cascade_redis_append_argv(p->redis, argc, argv, lens);
    if (rc != 0) {
        pipe_redis_failed(p, rc);
        return;
    }
    p->queued++;
}

void cascade_recall__pipe_cmd(struct cascade_recall__pipe *p, int argc, const char *const *argv)
{
    size_t lens[8];
    if (argc > 8) {
        cascade_recall__pipe_fail(p, CASCADE_EINTERNAL, "too many command arguments");
        return;
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    cascade_recall__pipe_argv(p, argc, (const char **)argv, lens);
}

redisReply *cascade_recall__pipe_reply(struct cascade_recall__pipe *p)
{
    if (p->rc != 0)
        return NULL;
    if (p->queued == 0) {
        cascade_recall__pipe_fail(p, CASCADE_EINTERNAL, "no reply is queued");
        return NULL;
    }
    redisReply *rep = NULL;
    p->queued--;
    int rc = cascade_redis_get_reply(p->redis, &rep);
    if (rc != 0) {
        pipe_redis_failed(p, rc);
        if (rc == CASCADE_EUNAVAILABLE)
            p->queued = 0; /* the connection is gone with everything queued on it */
        return NULL;
    }
    return rep;
}

int cascade_recall__pipe_end(struct cascade_recall__pipe *p)
{
    while (p->queued > 0) {
        redisReply *rep = NULL;
        p->queued--;
        int rc = cascade_redis_get_reply(p->redis, &rep);
        freeReplyObject(rep);
        if (rc == CASCADE_EUNAVAILABLE) {
            pipe_redis_failed(p, rc);
            p->queued = 0;
        }
    }
    return p->rc;
}

void cascade_recall__pipe_zrevrange(struct cascade_recall__pipe *p, const char *key, size_t max)
{
    char stop[24];
    snprintf(stop, sizeof stop, "%zu", max ? max - 1 : 0);
    cascade_recall__pipe_cmd(p, 5, (const char *[]){"ZREVRANGE", key, "0", stop, "WITHSCORES"});
}

void cascade_recall__pipe_lrange(struct cascade_recall__pipe *p, const char *key, long long first,
                                 long long last)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", first);
    snprintf(b, sizeof b, "%lld", last);
    cascade_recall__pipe_cmd(p, 4, (const char *[]){"LRANGE", key, a, b});
}

void cascade_recall__pipe_get(struct cascade_recall__pipe *p, const char *key)
{
    cascade_recall__pipe_cmd(p, 2, (const char *[]){"GET", key});
}

int cascade_recall__read_zset(struct cascade_recall__pipe *p, cascade_arena *arena, const char *key,
                              struct cascade_recall__zlist *out)
{
    memset(out, 0, sizeof *out);
    redisReply *rep = cascade_recall__pipe_reply(p);
    if (!rep)
        return p->rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0) {
        cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a sorted set of items", key);
        goto out;
    }
    size_t n = rep->elements / 2;
    out->ids = cascade_arena_alloc(arena, (n + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(arena, (n + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores) {
        cascade_recall__pipe_fail(p, CASCADE_ENOMEM, "out of request memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = rep->element[2 * i], *s = rep->element[2 * i + 1];
        if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
            cascade_recall__parse_id(m->str, m->len, &out->ids[i]) != 0) {
            cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: member %zu is not an item id", key,
                                      i);
            goto out;
        }
        out->scores[i] = cascade_recall__parse_score(s->str, s->len);
    }
    out->count = n;
out:
    freeReplyObject(rep);
    return p->rc;
}

int cascade_recall__parse_neighbours(struct cascade_recall__pipe *p, cascade_arena *arena,
                                     const char *key, const redisReply *rep, size_t max,
                                     struct cascade_recall_hits *out)
{
    memset(out, 0, sizeof *out);
    if (rep->type == REDIS_REPLY_NIL)
        return p->rc;
    if (rep->type != REDIS_REPLY_STRING) {
        cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a NeighbourList record", key);
        return p->rc;
    }
    out->ids = cascade_arena_alloc(arena, (max + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(arena, (max + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores) {
        cascade_recall__pipe_fail(p, CASCADE_ENOMEM, "out of request memory");
        return p->rc;
    }
    if (cascade_recall_decode_neighbours((const uint8_t *)rep->str, rep->len, max, out->ids,
                                         out->scores, &out->count) != 0) {
        out->count = 0;
        cascade_recall__pipe_fail(
            p, CASCADE_EFORMAT, "%s: not a valid NeighbourList record (%zu bytes)", key, rep->len);
    }
    return p->rc;
}

int cascade_recall__read_neighbours(struct cascade_recall__pipe *p, cascade_arena *arena,
                                    const char *key, size_t max, struct cascade_recall_hits *out)
{
    memset(out, 0, sizeof *out);
    redisReply *rep = cascade_recall__pipe_reply(p);
    if (!rep)
        return p->rc;
    cascade_recall__parse_neighbours(p, arena, key, rep, max, out);
    freeReplyObject(rep);
    return p->rc;
}

int cascade_recall__read_interactions(struct cascade_recall__pipe *p, cascade_arena *arena,
                                      const char *key, struct cascade_recall_hits *out)
{
    memset(out, 0, sizeof *out);
    redisReply *rep = cascade_recall__pipe_reply(p);
    if (!rep)
        return p->rc;
    if (rep->type != REDIS_REPLY_ARRAY) {
        cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a list", key);
        goto out;
    }
    size_t n = rep->elements;
    out->ids = cascade_arena_alloc(arena, (n + 1) * sizeof *out->ids);
    out->scores = cascade_arena_alloc(arena, (n + 1) * sizeof *out->scores);
    if (!out->ids || !out->scores) {
        cascade_recall__pipe_fail(p, CASCADE_ENOMEM, "out of request memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = rep->element[i];
        float w;
        if (e->type != REDIS_REPLY_STRING ||
            cascade_recall__decode_interaction((const uint8_t *)e->str, e->len, &out->ids[i], &w) !=
                0) {
            cascade_recall__pipe_fail(p, CASCADE_EFORMAT, "%s: not a valid Interaction record",
                                      key);
            goto out;
        }
        out->scores[i] = w == 0 ? 1.0f : w;
    }
    out->count = n;
out:
    freeReplyObject(rep);
    return p->rc;
}
