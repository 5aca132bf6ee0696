/* Filter stage: exposure Bloom filters (read: one MGET of the last
 * `windows` bitmaps and a local bit test; write: pipelined SETBIT, or a
 * reservation under WATCH), the consumed and blocked-item sets (SRANDMEMBER
 * in the same pipeline, SMISMEMBER when a set is as large as the
 * candidates), blocked authors (only for users who have some), duplicate
 * removal, and a drop counter per reason. */
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "idmap.h"
#include "request.h"
#include "store.h"

/* The proto's bound on RecordExposure items per call. */
#define FILTER_MAX_EXPOSURE_ITEMS 1000
/* Share of the configured fp_rate the exposure filters are sized for. */
#define FILTER_FP_MARGIN 0.8

/* Bloom hash functions supported (fp_rate >= 1e-9 needs at most 30). */
#define FILTER_MAX_HASHES 64

/* Drop reasons, in the order FilterResponse.dropped lists them. */
enum {
    DROP_EXPOSED,
    DROP_CONSUMED,
    DROP_BLOCKED_ITEM,
    DROP_BLOCKED_AUTHOR,
    DROP_DUPLICATE,
    DROP_REASONS
};
static const char *const drop_reason[DROP_REASONS] = {"exposed", "consumed", "blocked_item",
                                                      "blocked_author", "duplicate"};

struct cascade_filter {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    int64_t window_seconds;
    int windows;
    size_t max_candidates;
    struct cascade_bloom_params bloom;
    cascade_metric *dropped_total[DROP_REASONS]; /* NULL without a registry */
    int64_t (*wall_s)(void);                     /* the server clock (tests may replace it) */
};

/* Reservation attempts (RecordExposure with reserve > 0) before giving up
 * on a user whose exposure filters keep changing under it: each attempt that
 * fails lost to another reservation that succeeded. */
#define FILTER_RESERVE_ATTEMPTS 16

/* ------------------------------------------------------------------ lifecycle */

static int filter_read_config(cascade_filter *f, const cascade_config *cfg, char *err,
                              size_t errlen)
{
    int64_t v, expected;
    double fp;
    int rc;
    if ((rc = cascade_config_int(cfg, "filter.exposure.window_seconds", 86400, 60, 366 * 86400,
                                 &f->window_seconds, err, errlen)))
        return rc;
    if ((rc = cascade_config_int(cfg, "filter.exposure.windows", 30, 1, 366, &v, err, errlen)))
        return rc;
    f->windows = (int)v;
    if ((rc = cascade_config_int(cfg, "filter.exposure.expected_items", 5000, 1, 100000000,
                                 &expected, err, errlen)))
        return rc;
    if ((rc = cascade_config_double(cfg, "filter.exposure.fp_rate", 0.001, 1e-9, 0.5, &fp, err,
                                    errlen)))
        return rc;
    if ((rc = cascade_config_int(cfg, "filter.max_candidates", 20000, 1, 1000000, &v, err, errlen)))
        return rc;
    f->max_candidates = (size_t)v;
    /* Size for FILTER_FP_MARGIN of the target: at capacity the textbook sizing
     * lands on the target itself, so a measured rate would sit above it half
     * the time; the margin costs about 3% more bits. */
    if (cascade_bloom_size((uint64_t)expected, fp * FILTER_FP_MARGIN, &f->bloom) != 0) {
        snprintf(err, errlen, "filter.exposure: cannot size a Bloom filter for %lld items at %g",
                 (long long)expected, fp);
        return CASCADE_EINVAL;
    }
    if (f->bloom.hashes > FILTER_MAX_HASHES) {
        snprintf(err, errlen,
                 "filter.exposure: %u hash functions exceed the limit of %d; raise "
                 "fp_rate",
                 f->bloom.hashes, FILTER_MAX_HASHES);
        return CASCADE_EINVAL;
    }
    if (f->bloom.bits > 4294967295ULL) { /* Redis strings hold at most 2^32 bits */
        snprintf(err, errlen,
                 "filter.exposure: %llu bits per filter exceed Redis's 2^32-bit strings; lower "
                 "expected_items or raise fp_rate",
                 (unsigned long long)f->bloom.bits);
        return CASCADE_EINVAL;
    }
    return 0;
}

static void register_metrics(cascade_filter *f, cascade_metrics *metrics)
{
    cascade_metric_family *fam =
        cascade_metrics_counter(metrics, "cascade_filter_dropped_total",
                                "Candidates the filter dropped, by reason", "reason");
    for (int r = 0; r < DROP_REASONS; r++)
        f->dropped_total[r] = cascade_metric_get(fam, (const char *const[]){drop_reason[r]});
}

cascade_filter *cascade_filter_create(const cascade_config *cfg, cascade_redis_pool *redis,
                                      const char *ns, cascade_metrics *metrics, char *err,
                                      size_t errlen)
{
    cascade_filter *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "filter: out of memory");
        goto fail;
    }
    if (!ns || !ns[0] || strlen(ns) >= sizeof f->ns) {
        snprintf(err, errlen, "filter: namespace must be 1..%zu characters", sizeof f->ns - 1);
        goto fail;
    }
    snprintf(f->ns, sizeof f->ns, "%s", ns);
    f->redis = redis;
    f->wall_s = cascade_wall_s;
    if (filter_read_config(f, cfg, err, errlen) != 0)
        goto fail;
    register_metrics(f, metrics);
    return f;
fail:
    free(f);
    return NULL;
}

void cascade_filter_destroy(cascade_filter *f)
{
    free(f);
}

int64_t cascade_filter_window(int64_t time_s, int64_t window_seconds)
{
    int64_t w = time_s / window_seconds;
    if (time_s % window_seconds != 0 && time_s < 0)
        w--; /* floor, not truncation, for times before 1970 */
    return w;
}

struct cascade_bloom_params cascade_filter_bloom_params(const cascade_filter *f)
{
    return f->bloom;
}

void cascade_filter_set_clock(cascade_filter *f, int64_t (*wall_s)(void))
{
    f->wall_s = wall_s ? wall_s : cascade_wall_s;
}

/* ------------------------------------------------------------------ helpers */

static int redis_failure(cascade_redis *redis, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == CASCADE_ENOMEM) {
        snprintf(err, errlen, "%s: out of memory", what);
        return rc;
    }
    snprintf(err, errlen, "%s: %s", what,
             cascade_redis_error(redis)[0] ? cascade_redis_error(redis) : cascade_strerror(rc));
    return rc == CASCADE_ETIMEDOUT ? rc : CASCADE_EUNAVAILABLE; /* deadline passed: not sent */
}

static bool past(int64_t deadline_ms)
{
    return cascade_now_ms() >= deadline_ms;
}

/* The current exposure window, always on the server's clock: a caller's
 * request_time_s or time_s never picks the windows checked or written. */
static int64_t current_window(const cascade_filter *f)
{
    return cascade_filter_window(f->wall_s(), f->window_seconds);
}

/* Read n pipelined replies, keeping them in replies[] when non-NULL (else
 * freeing them). On failure stops at a dropped connection, otherwise keeps
 * reading so the pipeline stays in step; returns the first error. */
static int read_replies(cascade_redis *redis, size_t n, redisReply **replies, const char *what,
                        char *err, size_t errlen)
{
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        int rc = cascade_redis_get_reply(redis, &rep);
        if (rc == 0 && rep && rep->type == REDIS_REPLY_ERROR) {
            if (!first) {
                snprintf(err, errlen, "%s: redis %s: %s", what, cascade_redis_addr(redis),
                         rep->str);
                first = CASCADE_EUNAVAILABLE;
            }
            freeReplyObject(rep);
            rep = NULL;
        } else if (rc != 0) {
            if (!first)
                first = redis_failure(redis, rc, what, err, errlen);
            if (rc == CASCADE_EUNAVAILABLE)
                break;
        }
        if (replies)
            replies[i] = rep;
        else if (rep)
            freeReplyObject(rep);
    }
    return first;
}

/* ------------------------------------------------------------------ Filter */

/* The packed form (item_ids, author_ids) replaces candidates: not both, at
 * most max_candidates ids, and no author ids or one per item id. */
static int check_columns(const cascade_filter *f, const Cascade__V1__FilterRequest *req, char *err,
                         size_t errlen)
{
    if (req->n_item_ids == 0 && req->n_author_ids == 0)
        return 0;
    if (req->n_candidates > 0) {
        snprintf(err, errlen, "candidates and item_ids are exclusive: send one or the other");
        return CASCADE_EINVAL;
    }
    if (req->n_item_ids > f->max_candidates) {
        snprintf(err, errlen, "%zu item_ids exceed the limit of %zu", req->n_item_ids,
                 f->max_candidates);
        return CASCADE_ETOOBIG;
    }
    if (req->n_author_ids != 0 && req->n_author_ids != req->n_item_ids) {
        snprintf(err, errlen, "author_ids: %zu entries for %zu item_ids (0 or one per item id)",
                 req->n_author_ids, req->n_item_ids);
        return CASCADE_EINVAL;
    }
    return 0;
}

static int filter_validate(const cascade_filter *f, const Cascade__V1__FilterRequest *req,
                           char *err, size_t errlen)
{
    int rc = cascade_request_check_user(req->user, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_candidates(req->candidates, req->n_candidates, f->max_candidates,
                                              err, errlen);
    if (rc == 0)
        rc = check_columns(f, req, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_experiments(req->experiments, err, errlen);
    return rc;
}

/* What one Filter call works on: the n candidates' item ids and authors (0 =
 * unknown), from the packed columns or from the candidates; reason[i] = 0
 * keeps candidate i, otherwise 1 + its drop reason; counts[r] is the number
 * dropped for reason r. */
struct verdict {
    const Cascade__V1__FilterRequest *req;
    cascade_arena *arena;
    size_t n;
    const uint64_t *ids;
    const uint64_t *authors; /* NULL: none sent */
    bool columns;            /* the request came as item_ids */
    uint8_t *reason;
    uint32_t counts[DROP_REASONS];
};

/* Point v at the request's ids and authors: the packed columns as they
 * are, or copied out of the candidates. */
static int verdict_columns(struct verdict *v)
{
    const Cascade__V1__FilterRequest *req = v->req;
    if ((v->columns = req->n_item_ids > 0)) {
        v->n = req->n_item_ids;
        v->ids = req->item_ids;
        v->authors = req->n_author_ids ? req->author_ids : NULL;
        return 0;
    }
    uint64_t *ids = cascade_arena_calloc(v->arena, req->n_candidates + 1, sizeof *ids);
    uint64_t *authors = cascade_arena_calloc(v->arena, req->n_candidates + 1, sizeof *authors);
    if (!ids || !authors)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < req->n_candidates; i++) {
        ids[i] = req->candidates[i]->item_id;
        authors[i] = req->candidates[i]->attrs ? req->candidates[i]->attrs->author_id : 0;
    }
    v->n = req->n_candidates;
    v->ids = ids;
    v->authors = authors;
    return 0;
}

static void drop(struct verdict *v, size_t i, int why)
{
    v->reason[i] = (uint8_t)(why + 1);
    v->counts[why]++;
}

/* Mark every repeat of an item id after its first occurrence (an id set, in
 * request order). */
static int mark_duplicates(struct verdict *v)
{
    size_t n = v->n;
    cascade_idmap seen;
    if (cascade_idmap_init(&seen, v->arena, n) != 0)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        bool created = false;
        if (!cascade_idmap_upsert(&seen, v->ids[i], &created))
            return CASCADE_ENOMEM;
        if (!created)
            drop(v, i, DROP_DUPLICATE);
    }
    return 0;
}

/* Queue SMISMEMBER key ids[0..n) (ids as decimal strings in nums). */
static int append_smismember(cascade_redis *redis, const char *key, char (*nums)[24], size_t n,
                             cascade_arena *arena)
{
    const char **argv = cascade_arena_calloc(arena, n + 2, sizeof *argv);
    size_t *argvlen = cascade_arena_calloc(arena, n + 2, sizeof *argvlen);
    if (!argv || !argvlen)
        return CASCADE_ENOMEM;
    argv[0] = "SMISMEMBER";
    argvlen[0] = strlen(argv[0]);
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        argv[i + 2] = nums[i];
        argvlen[i + 2] = strlen(nums[i]);
    }
    return cascade_redis_append_argv(redis, (int)(n + 2), argv, argvlen);
}

/* Candidates still standing: positions, and their decimal ids once a
 * command needs them (standing_nums). */
struct standing {
    size_t *pos;
    char (*nums)[24];
    size_t n;
};

static int collect_standing(struct verdict *v, struct standing *s)
{
    size_t n = v->n;
    s->n = 0;
    s->nums = NULL;
    s->pos = cascade_arena_calloc(v->arena, n + 1, sizeof *s->pos);
    if (!s->pos)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!v->reason[i])
            s->pos[s->n++] = i;
    return 0;
}

/* The standing candidates' ids as decimal strings (formatted once). */
static int standing_nums(struct verdict *v, struct standing *s)
{
    if (s->nums)
        return 0;
    if (!(s->nums = cascade_arena_calloc(v->arena, s->n + 1, sizeof *s->nums)))
        return CASCADE_ENOMEM;
    for (size_t j = 0; j < s->n; j++)
        snprintf(s->nums[j], sizeof s->nums[0], "%llu", (unsigned long long)v->ids[s->pos[j]]);
    return 0;
}

/* Test the standing candidates against the exposure bitmaps. */
static void apply_exposed(const cascade_filter *f, struct verdict *v, const struct standing *s,
                          redisReply *const *bitmaps)
{
    for (size_t j = 0; j < s->n; j++) {
        size_t i = s->pos[j];
        for (int w = 0; w < f->windows; w++) {
            const redisReply *b = bitmaps[w];
            if (!b || b->type != REDIS_REPLY_STRING)
                continue;
            if (cascade_bloom_test_bitmap(&f->bloom, (const uint8_t *)b->str, b->len, v->ids[i])) {
                drop(v, i, DROP_EXPOSED);
                break;
            }
        }
    }
}

/* Drop the standing candidates an SMISMEMBER reply marks as members. */
static int apply_members(struct verdict *v, const struct standing *s, const redisReply *rep,
                         int why, cascade_redis *redis, const char *what, char *err, size_t errlen)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != s->n) {
        snprintf(err, errlen, "%s: redis %s: unexpected SMISMEMBER reply", what,
                 cascade_redis_addr(redis));
        return CASCADE_EUNAVAILABLE;
    }
    for (size_t j = 0; j < s->n; j++)
        if (!v->reason[s->pos[j]] && rep->element[j]->type == REDIS_REPLY_INTEGER &&
            rep->element[j]->integer)
            drop(v, s->pos[j], why);
    return 0;
}

/* A set member as an item id: only the canonical decimal form ("0", or no
 * leading zero, at most UINT64_MAX) is one; SMISMEMBER compares the
 * candidate's decimal id as a string, so "007" never matched item 7. */
static bool member_id(const redisReply *m, uint64_t *id)
{
    uint64_t v = 0;
    if (m->type != REDIS_REPLY_STRING || m->len == 0 || m->len > 20 ||
        (m->len > 1 && m->str[0] == '0'))
        return false;
    for (size_t i = 0; i < m->len; i++) {
        unsigned d = (unsigned)(m->str[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *id = v;
    return true;
}

/* Drop the standing candidates that are members of a whole set (an
 * SRANDMEMBER reply shorter than its count: every member). */
static int apply_whole_set(struct verdict *v, const struct standing *s, const redisReply *set,
                           int why)
{
    cascade_idmap members;
    uint64_t id;
    if (set->elements == 0)
        return 0;
    if (cascade_idmap_init(&members, v->arena, set->elements) != 0)
        return CASCADE_ENOMEM;
    for (size_t m = 0; m < set->elements; m++) {
        bool created;
        if (member_id(set->element[m], &id) && !cascade_idmap_upsert(&members, id, &created))
            return CASCADE_ENOMEM;
    }
    for (size_t j = 0; j < s->n; j++)
        if (!v->reason[s->pos[j]] && cascade_idmap_find(&members, v->ids[s->pos[j]]))
            drop(v, s->pos[j], why);
    return 0;
}

/* The consumed and blocked-item sets are read with SRANDMEMBER key n (n =
 * the standing candidates), which answers the whole set when it has fewer
 * than n members — the usual case, a few dozen consumed items against
 * hundreds of candidates: Redis parses one count instead of n ids and the
 * filter tests the members locally. A set of n members or more is asked
 * SMISMEMBER over the candidates in a second round trip, as before. */
struct user_set {
    const char *key;
    int why;
    const char *what;
    redisReply *sample;  /* the SRANDMEMBER reply */
    redisReply *members; /* SMISMEMBER's, when the sample was not the whole set */
};

static bool whole_set(const struct user_set *u, size_t n)
{
    return u->sample->elements < n;
}

/* For the sets the sample did not cover, SMISMEMBER in one round trip. */
static int ask_members(cascade_redis *redis, struct verdict *v, struct standing *s,
                       struct user_set *sets, size_t n_sets, char *err, size_t errlen)
{
    size_t queued = 0;
    int rc = 0;
    for (size_t k = 0; k < n_sets; k++) {
        if (whole_set(&sets[k], s->n))
            continue;
        if ((rc = standing_nums(v, s)) != 0)
            return rc;
        if ((rc = append_smismember(redis, sets[k].key, s->nums, s->n, v->arena)) != 0)
            return redis_failure(redis, rc, "filter", err, errlen);
        queued++;
    }
    for (size_t k = 0; k < n_sets && queued > 0; k++)
        if (!whole_set(&sets[k], s->n)) {
            queued--;
            if ((rc = read_replies(redis, 1, &sets[k].members, sets[k].what, err, errlen)) != 0)
                break;
        }
    if (queued > 0) /* keep the connection in step after a failed reply */
        read_replies(redis, queued, NULL, "filter", err, errlen);
    return rc;
}

/* One round trip for everything a user's own keys say (a second only for a
 * set as large as the candidates): MGET of the bitmaps of the last
 * f->windows windows, SRANDMEMBER of the consumed and blocked-item sets,
 * SCARD of the blocked-author set (its size goes to *blocked_authors, so the
 * author check only runs for users who blocked someone). A window key that
 * holds another type reads as empty (MGET answers nil for it). */
static int mark_user_sets(const cascade_filter *f, cascade_redis *redis, struct verdict *v,
                          long long *blocked_authors, char *err, size_t errlen)
{
    const Cascade__V1__UserContext *user = v->req->user;
    int64_t now_window = current_window(f);
    size_t n_keys = (size_t)f->windows, n_sets = 2;
    redisReply *rep[4] = {NULL, NULL, NULL, NULL};
    char(*keys)[CASCADE_KEY_MAX] = cascade_arena_calloc(v->arena, n_keys, sizeof *keys);
    const char **argv = cascade_arena_calloc(v->arena, n_keys + 1, sizeof *argv);
    size_t *argvlen = cascade_arena_calloc(v->arena, n_keys + 1, sizeof *argvlen);
    char consumed[CASCADE_KEY_MAX], blocked[CASCADE_KEY_MAX], authors[CASCADE_KEY_MAX];
    struct user_set sets[2] = {{consumed, DROP_CONSUMED, "consumed set", NULL, NULL},
                               {blocked, DROP_BLOCKED_ITEM, "blocked items", NULL, NULL}};
    struct standing s;
    int rc;
    *blocked_authors = 0;
    if (!keys || !argv || !argvlen || collect_standing(v, &s) != 0)
        return CASCADE_ENOMEM;
    if (s.n == 0)
        return 0;
    argv[0] = "MGET";
    argvlen[0] = 4;
    for (size_t w = 0; w < n_keys; w++) {
        cascade_key_exposure(keys[w], f->ns, user->user_id, now_window - (int64_t)w);
        argv[w + 1] = keys[w];
        argvlen[w + 1] = strlen(keys[w]);
    }
    cascade_key_user_consumed(consumed, f->ns, user->user_id);
    cascade_key_user_blocked_items(blocked, f->ns, user->user_id);
    cascade_key_user_blocked_authors(authors, f->ns, user->user_id);
    if ((rc = cascade_redis_append_argv(redis, (int)n_keys + 1, argv, argvlen)) != 0 ||
        (rc = cascade_redis_append(redis, "SRANDMEMBER %s %llu", consumed,
                                   (unsigned long long)s.n)) != 0 ||
        (rc = cascade_redis_append(redis, "SRANDMEMBER %s %llu", blocked,
                                   (unsigned long long)s.n)) != 0 ||
        (rc = cascade_redis_append(redis, "SCARD %s", authors)) != 0)
        return redis_failure(redis, rc, "filter", err, errlen);
    if ((rc = read_replies(redis, 4, rep, "filter", err, errlen)) != 0)
        goto out;
    if (!rep[0] || rep[0]->type != REDIS_REPLY_ARRAY || rep[0]->elements != n_keys) {
        snprintf(err, errlen, "filter: redis %s: unexpected MGET reply", cascade_redis_addr(redis));
        rc = CASCADE_EUNAVAILABLE;
        goto out;
    }
    for (size_t k = 0; k < n_sets; k++) {
        sets[k].sample = rep[1 + k];
        if (!sets[k].sample || sets[k].sample->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "%s: redis %s: unexpected SRANDMEMBER reply", sets[k].what,
                     cascade_redis_addr(redis));
            rc = CASCADE_EUNAVAILABLE;
            goto out;
        }
    }
    if ((rc = ask_members(redis, v, &s, sets, n_sets, err, errlen)) != 0)
        goto out;
    apply_exposed(f, v, &s, rep[0]->element);
    for (size_t k = 0; k < n_sets && rc == 0; k++)
        rc = whole_set(&sets[k], s.n) ? apply_whole_set(v, &s, sets[k].sample, sets[k].why)
                                      : apply_members(v, &s, sets[k].members, sets[k].why, redis,
                                                      sets[k].what, err, errlen);
    if (rc == 0 && rep[3] && rep[3]->type == REDIS_REPLY_INTEGER)
        *blocked_authors = rep[3]->integer;
out:
    for (size_t k = 0; k < n_sets; k++)
        if (sets[k].members)
            freeReplyObject(sets[k].members);
    for (size_t i = 0; i < 4; i++)
        if (rep[i])
            freeReplyObject(rep[i]);
    return rc;
}

/* The author of each standing candidate: from its attrs or author_ids when
 * the caller sent them, else from its item record (one MGET for those only);
 * 0 = unknown. */
static int standing_authors(const cascade_filter *f, cascade_redis *redis, struct verdict *v,
                            const struct standing *s, uint64_t *authors, char *err, size_t errlen)
{
    uint64_t *ids = cascade_arena_calloc(v->arena, s->n + 1, sizeof *ids);
    size_t *at = cascade_arena_calloc(v->arena, s->n + 1, sizeof *at);
    size_t m = 0;
    if (!ids || !at)
        return CASCADE_ENOMEM;
    for (size_t j = 0; j < s->n; j++) {
        authors[j] = v->authors ? v->authors[s->pos[j]] : 0;
        if (authors[j] == 0) {
            ids[m] = v->ids[s->pos[j]];
            at[m++] = j;
        }
    }
    if (m == 0)
        return 0;
    cascade_v1_ItemRecord *recs = cascade_arena_calloc(v->arena, m, sizeof *recs);
    bool *found = cascade_arena_calloc(v->arena, m, sizeof *found);
    if (!recs || !found)
        return CASCADE_ENOMEM;
    int rc = cascade_store_get_items(redis, f->ns, ids, m, recs, found);
    if (rc != 0)
        return redis_failure(redis, rc, "item records", err, errlen);
    for (size_t k = 0; k < m; k++)
        authors[at[k]] = found[k] ? recs[k].author_id : 0;
    return 0;
}

/* Drop candidates whose author is in the user's blocked-author set. */
static int mark_blocked_authors(const cascade_filter *f, cascade_redis *redis, struct verdict *v,
                                char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    struct standing s;
    redisReply *rep = NULL;
    int rc;
    if (collect_standing(v, &s) != 0)
        return CASCADE_ENOMEM;
    if (s.n == 0)
        return 0;
    uint64_t *authors = cascade_arena_calloc(v->arena, s.n, sizeof *authors);
    if (!authors)
        return CASCADE_ENOMEM;
    if ((rc = standing_authors(f, redis, v, &s, authors, err, errlen)) != 0)
        return rc;
    /* Ask about every standing candidate's author (repeats are cheap: a set
     * lookup each); unknown authors (0) are never members. */
    if (standing_nums(v, &s) != 0)
        return CASCADE_ENOMEM;
    for (size_t j = 0; j < s.n; j++)
        snprintf(s.nums[j], sizeof s.nums[0], "%llu", (unsigned long long)authors[j]);
    cascade_key_user_blocked_authors(key, f->ns, v->req->user->user_id);
    if ((rc = append_smismember(redis, key, s.nums, s.n, v->arena)) != 0)
        return redis_failure(redis, rc, "blocked authors", err, errlen);
    if ((rc = read_replies(redis, 1, &rep, "blocked authors", err, errlen)) != 0)
        return rc;
    rc = apply_members(v, &s, rep, DROP_BLOCKED_AUTHOR, redis, "blocked authors", err, errlen);
    freeReplyObject(rep);
    return rc;
}

static int filter_response(const struct verdict *v, Cascade__V1__FilterResponse **out)
{
    const Cascade__V1__FilterRequest *req = v->req;
    Cascade__V1__FilterResponse *resp = cascade_arena_alloc(v->arena, sizeof *resp);
    if (!resp)
        return CASCADE_ENOMEM;
    cascade__v1__filter_response__init(resp);
    resp->dropped = cascade_arena_calloc(v->arena, DROP_REASONS, sizeof *resp->dropped);
    /* ids are packed as one field; candidates one message each (a request
     * in columns has no candidates to send back). */
    bool ids_only = req->ids_only || v->columns;
    if (ids_only)
        resp->kept_ids = cascade_arena_calloc(v->arena, v->n + 1, sizeof *resp->kept_ids);
    else
        resp->candidates = cascade_arena_calloc(v->arena, v->n + 1, sizeof *resp->candidates);
    if ((!resp->candidates && !resp->kept_ids) || !resp->dropped)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < v->n; i++)
        if (v->reason[i])
            continue;
        else if (ids_only)
            resp->kept_ids[resp->n_kept_ids++] = v->ids[i];
        else
            resp->candidates[resp->n_candidates++] = req->candidates[i];
    for (int r = 0; r < DROP_REASONS; r++) {
        Cascade__V1__DropCount *d = cascade_arena_alloc(v->arena, sizeof *d);
        if (!d)
            return CASCADE_ENOMEM;
        cascade__v1__drop_count__init(d);
        d->reason = (char *)drop_reason[r]; /* static; only read when packing */
        d->count = v->counts[r];
        resp->dropped[resp->n_dropped++] = d;
    }
    *out = resp;
    return 0;
}

static void count_drops(const cascade_filter *f, const struct verdict *v)
{
    for (int r = 0; r < DROP_REASONS; r++)
        if (v->counts[r])
            cascade_metric_add(f->dropped_total[r], v->counts[r]);
}

int cascade_filter_run(cascade_filter *f, cascade_arena *arena, int64_t deadline_ms,
                       const Cascade__V1__FilterRequest *req, Cascade__V1__FilterResponse **out,
                       char *err, size_t errlen)
{
    struct verdict v = {.req = req, .arena = arena};
    long long blocked_authors = 0;
    int rc = filter_validate(f, req, err, errlen);
    if (rc != 0)
        return rc;
    cascade_redis *redis = cascade_redis_pool_get(f->redis);
    cascade_redis_set_deadline(redis, deadline_ms);
    if (!redis || verdict_columns(&v) != 0)
        goto nomem;
    v.reason = cascade_arena_calloc(arena, v.n + 1, 1);
    if (!v.reason || mark_duplicates(&v) != 0)
        goto nomem;
    if (v.n > 0) {
        if ((rc = mark_user_sets(f, redis, &v, &blocked_authors, err, errlen)) != 0)
            goto fail;
        if (past(deadline_ms))
            goto late;
        if (blocked_authors > 0 && (rc = mark_blocked_authors(f, redis, &v, err, errlen)) != 0)
            goto fail;
        if (past(deadline_ms))
            goto late;
    }
    if (filter_response(&v, out) != 0)
        goto nomem;
    count_drops(f, &v);
    return 0;
fail:
    if (rc == CASCADE_ENOMEM)
        goto nomem;
    return rc;
late:
    snprintf(err, errlen, "filter: deadline exceeded");
    return CASCADE_ETIMEDOUT;
nomem:
    snprintf(err, errlen, "filter: out of request memory");
    return CASCADE_ENOMEM;
}

/* ------------------------------------------------------------------ RecordExposure */

static int record_validate(const Cascade__V1__RecordExposureRequest *req, char *err, size_t errlen)
{
    int rc = cascade_request_check_user_id("user_id", req->user_id, err, errlen);
    if (rc != 0)
        return rc;
    if (req->n_item_ids > FILTER_MAX_EXPOSURE_ITEMS) {
        snprintf(err, errlen, "%zu item_ids exceed the limit of %d per call", req->n_item_ids,
                 FILTER_MAX_EXPOSURE_ITEMS);
        return CASCADE_ETOOBIG;
    }
    if (req->time_s < 0) {
        snprintf(err, errlen, "time_s %lld is negative", (long long)req->time_s);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* Queue SETBIT for every Bloom position of every item, then EXPIRE. Returns
 * the number of commands queued in *queued. */
static int record_append(const cascade_filter *f, cascade_redis *redis, const char *key,
                         const Cascade__V1__RecordExposureRequest *req, size_t *queued)
{
    uint64_t pos[FILTER_MAX_HASHES];
    const struct cascade_bloom_params p = f->bloom;
    *queued = 0;
    for (size_t i = 0; i < req->n_item_ids; i++) {
        cascade_bloom_positions(&p, req->item_ids[i], pos);
        for (uint32_t h = 0; h < p.hashes; h++) {
            int rc =
                cascade_redis_append(redis, "SETBIT %s %llu 1", key, (unsigned long long)pos[h]);
            if (rc != 0)
                return rc;
            (*queued)++;
        }
    }
    long long ttl = (long long)f->windows * (long long)f->window_seconds;
    int rc = cascade_redis_append(redis, "EXPIRE %s %lld", key, ttl);
    if (rc == 0)
        (*queued)++;
    return rc;
}

/* A reservation works on the user's bitmaps of the last f->windows windows
 * (keys[0] = the current one), read with WATCH so that the write commits only
 * if none of them changed since: optimistic, but as atomic per user as one
 * script, and Redis does none of the per-bit work (a Lua script doing it cost
 * Redis ≈ 200 us a call, docs/load.md). */
struct reservation {
    char (*keys)[CASCADE_KEY_MAX];
    const char **argv; /* scratch: a command over every key */
    size_t *argvlen;
    uint8_t *map; /* the current bitmap with this call's bits set */
    size_t map_cap, map_len;
    size_t *taken; /* indices into the request's items */
    size_t n_taken;
};

static int reservation_init(const cascade_filter *f, cascade_arena *arena, int64_t window,
                            const Cascade__V1__RecordExposureRequest *req, struct reservation *rs)
{
    size_t n = (size_t)f->windows;
    rs->keys = cascade_arena_calloc(arena, n, sizeof *rs->keys);
    rs->argv = cascade_arena_calloc(arena, n + 1, sizeof *rs->argv);
    rs->argvlen = cascade_arena_calloc(arena, n + 1, sizeof *rs->argvlen);
    rs->map_cap = (size_t)((f->bloom.bits + 7) / 8);
    rs->map = cascade_arena_alloc(arena, rs->map_cap + 1);
    rs->taken = cascade_arena_calloc(arena, req->n_item_ids + 1, sizeof *rs->taken);
    if (!rs->keys || !rs->argv || !rs->argvlen || !rs->map || !rs->taken)
        return CASCADE_ENOMEM;
    for (size_t w = 0; w < n; w++) {
        cascade_key_exposure(rs->keys[w], f->ns, req->user_id, window - (int64_t)w);
        rs->argv[w + 1] = rs->keys[w];
        rs->argvlen[w + 1] = strlen(rs->keys[w]);
    }
    return 0;
}

/* Queue `command` key1 .. keyN over the user's window keys. */
static int append_over_keys(const cascade_filter *f, cascade_redis *redis, struct reservation *rs,
                            const char *command)
{
    rs->argv[0] = command;
    rs->argvlen[0] = strlen(command);
    return cascade_redis_append_argv(redis, f->windows + 1, rs->argv, rs->argvlen);
}

/* Pick the reservation from the bitmaps (MGET reply, current window first):
 * walk the items in order, take one when no window has all of its bits set
 * — the current window counting the bits of the items taken before it — and
 * set its bits, until `want` are taken. map/map_len become the current bitmap
 * as SETBIT of the taken bits would leave it (grown with zero bytes up to the
 * highest byte touched). */
static void reservation_pick(const cascade_filter *f, const redisReply *maps,
                             const Cascade__V1__RecordExposureRequest *req, struct reservation *rs)
{
    const struct cascade_bloom_params *p = &f->bloom;
    const redisReply *cur = maps->element[0];
    uint64_t pos[FILTER_MAX_HASHES];
    size_t cur_len = cur->type == REDIS_REPLY_STRING ? cur->len : 0;
    memset(rs->map, 0, rs->map_cap);
    if (cur_len)
        memcpy(rs->map, cur->str, cur_len); /* map_cap >= cur_len (reserve_attempt) */
    rs->map_len = cur_len;
    rs->n_taken = 0;
    for (size_t i = 0; i < req->n_item_ids && rs->n_taken < req->reserve; i++) {
        uint64_t id = req->item_ids[i];
        bool seen = cascade_bloom_test_bitmap(p, rs->map, rs->map_cap, id);
        for (size_t w = 1; !seen && w < maps->elements; w++) {
            const redisReply *b = maps->element[w];
            seen = b->type == REDIS_REPLY_STRING &&
                   cascade_bloom_test_bitmap(p, (const uint8_t *)b->str, b->len, id);
        }
        if (seen)
            continue;
        cascade_bloom_positions(p, id, pos);
        for (uint32_t h = 0; h < p->hashes; h++) {
            rs->map[pos[h] >> 3] |= (uint8_t)(0x80u >> (pos[h] & 7));
            if ((pos[h] >> 3) + 1 > rs->map_len)
                rs->map_len = (size_t)(pos[h] >> 3) + 1;
        }
        rs->taken[rs->n_taken++] = i;
    }
}

/* Read a WATCH / MULTI / SET acknowledgement. */
static int expect_status(cascade_redis *redis, const char *what, char *err, size_t errlen)
{
    redisReply *rep = NULL;
    int rc = read_replies(redis, 1, &rep, what, err, errlen);
    if (rc == 0 && (!rep || rep->type != REDIS_REPLY_STATUS)) {
        snprintf(err, errlen, "%s: redis %s: unexpected reply", what, cascade_redis_addr(redis));
        rc = CASCADE_EUNAVAILABLE;
    }
    freeReplyObject(rep);
    return rc;
}

/* One attempt: UNWATCH (a connection may carry an earlier attempt's watch),
 * WATCH and MGET the window keys; pick; then MULTI, SET of the current
 * bitmap with EX ttl (the state SETBIT of each taken bit and EXPIRE would
 * leave), EXEC. *committed is false when EXEC was aborted because a watched
 * key changed (another reservation got there first): try again. */
static int reserve_attempt(const cascade_filter *f, cascade_redis *redis, cascade_arena *arena,
                           const Cascade__V1__RecordExposureRequest *req, struct reservation *rs,
                           bool *committed, char *err, size_t errlen)
{
    const char *what = "record exposure";
    redisReply *maps = NULL, *exec = NULL;
    int rc;
    *committed = false;
    if ((rc = cascade_redis_append(redis, "UNWATCH")) != 0 ||
        (rc = append_over_keys(f, redis, rs, "WATCH")) != 0 ||
        (rc = append_over_keys(f, redis, rs, "MGET")) != 0)
        return redis_failure(redis, rc, what, err, errlen);
    if ((rc = expect_status(redis, what, err, errlen)) != 0 ||
        (rc = expect_status(redis, what, err, errlen)) != 0 ||
        (rc = read_replies(redis, 1, &maps, what, err, errlen)) != 0)
        goto out;
    if (!maps || maps->type != REDIS_REPLY_ARRAY || maps->elements != (size_t)f->windows) {
        snprintf(err, errlen, "%s: redis %s: unexpected MGET reply", what,
                 cascade_redis_addr(redis));
        rc = CASCADE_EUNAVAILABLE;
        goto out;
    }
    const redisReply *cur = maps->element[0];
    if (cur->type == REDIS_REPLY_STRING && cur->len > rs->map_cap) {
        /* Longer than this filter's size (written under another config):
         * kept whole, as SETBIT would keep it. */
        if (!(rs->map = cascade_arena_alloc(arena, cur->len))) {
            snprintf(err, errlen, "%s: out of request memory", what);
            rc = CASCADE_ENOMEM;
            goto out;
        }
        rs->map_cap = cur->len;
    }
    reservation_pick(f, maps, req, rs);
    if (rs->n_taken == 0) {
        *committed = true; /* nothing to write; the watch is dropped by the next UNWATCH */
        goto out;
    }
    long long ttl = (long long)f->windows * (long long)f->window_seconds;
    if ((rc = cascade_redis_append(redis, "MULTI")) != 0 ||
        (rc = cascade_redis_append(redis, "SET %s %b EX %lld", rs->keys[0], rs->map, rs->map_len,
                                   ttl)) != 0 ||
        (rc = cascade_redis_append(redis, "EXEC")) != 0) {
        rc = redis_failure(redis, rc, what, err, errlen);
        goto out;
    }
    if ((rc = expect_status(redis, what, err, errlen)) != 0 ||
        (rc = expect_status(redis, what, err, errlen)) != 0 ||
        (rc = read_replies(redis, 1, &exec, what, err, errlen)) != 0)
        goto out;
    if (exec && exec->type == REDIS_REPLY_ARRAY && exec->elements == 1)
        *committed = true;
    else if (!exec || exec->type != REDIS_REPLY_NIL) {
        snprintf(err, errlen, "%s: redis %s: unexpected EXEC reply", what,
                 cascade_redis_addr(redis));
        rc = CASCADE_EUNAVAILABLE;
    }
out:
    freeReplyObject(exec);
    freeReplyObject(maps);
    return rc;
}

/* Reserve up to req->reserve of req's items and list the ones taken in
 * resp->item_ids (see struct reservation). */
static int record_reserve(const cascade_filter *f, cascade_redis *redis, cascade_arena *arena,
                          int64_t window, int64_t deadline_ms,
                          const Cascade__V1__RecordExposureRequest *req,
                          Cascade__V1__RecordExposureResponse *resp, char *err, size_t errlen)
{
    struct reservation rs;
    bool committed = false;
    resp->item_ids = cascade_arena_calloc(arena, req->n_item_ids + 1, sizeof *resp->item_ids);
    if (!resp->item_ids || reservation_init(f, arena, window, req, &rs) != 0) {
        snprintf(err, errlen, "record exposure: out of request memory");
        return CASCADE_ENOMEM;
    }
    for (int attempt = 0; attempt < FILTER_RESERVE_ATTEMPTS && !committed; attempt++) {
        if (attempt > 0 && past(deadline_ms)) {
            snprintf(err, errlen, "record exposure: deadline exceeded");
            return CASCADE_ETIMEDOUT;
        }
        int rc = reserve_attempt(f, redis, arena, req, &rs, &committed, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (!committed) {
        snprintf(err, errlen,
                 "record exposure: user %s's exposure filters changed during %d reservation "
                 "attempts in a row",
                 req->user_id, FILTER_RESERVE_ATTEMPTS);
        return CASCADE_EUNAVAILABLE;
    }
    for (size_t j = 0; j < rs.n_taken; j++)
        resp->item_ids[resp->n_item_ids++] = req->item_ids[rs.taken[j]];
    return 0;
}

int cascade_filter_record(cascade_filter *f, cascade_arena *arena, int64_t deadline_ms,
                          const Cascade__V1__RecordExposureRequest *req,
                          Cascade__V1__RecordExposureResponse **out, char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    size_t queued = 0;
    int rc = record_validate(req, err, errlen);
    if (rc != 0)
        return rc;
    Cascade__V1__RecordExposureResponse *resp = cascade_arena_alloc(arena, sizeof *resp);
    cascade_redis *redis = cascade_redis_pool_get(f->redis);
    cascade_redis_set_deadline(redis, deadline_ms);
    if (!resp || !redis) {
        snprintf(err, errlen, "record exposure: out of memory");
        return CASCADE_ENOMEM;
    }
    cascade__v1__record_exposure_response__init(resp);
    if (req->n_item_ids > 0) {
        if (past(deadline_ms)) {
            snprintf(err, errlen, "record exposure: deadline exceeded");
            return CASCADE_ETIMEDOUT;
        }
        int64_t window = current_window(f);
        if (req->reserve > 0) {
            if ((rc = record_reserve(f, redis, arena, window, deadline_ms, req, resp, err,
                                     errlen)) != 0)
                return rc;
        } else {
            cascade_key_exposure(key, f->ns, req->user_id, window);
            rc = record_append(f, redis, key, req, &queued);
            int rc2 = read_replies(redis, queued, NULL, "record exposure", err, errlen);
            if (rc != 0)
                return redis_failure(redis, rc, "record exposure", err, errlen);
            if (rc2 != 0)
                return rc2;
            resp->item_ids = req->item_ids; /* borrowed; only read when packing */
            resp->n_item_ids = req->n_item_ids;
        }
    }
    resp->recorded = (uint32_t)resp->n_item_ids;
    *out = resp;
    return 0;
}

/* ------------------------------------------------------------------ rpc */

int cascade_filter_handle_filter(void *service, cascade_rpc_ctx *ctx,
                                 const ProtobufCMessage *request, ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__FilterResponse *resp = NULL;
    int rc =
        cascade_filter_run(service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
                           (const Cascade__V1__FilterRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

int cascade_filter_handle_record(void *service, cascade_rpc_ctx *ctx,
                                 const ProtobufCMessage *request, ProtobufCMessage **response)
{
    char err[512] = "";
    Cascade__V1__RecordExposureResponse *resp = NULL;
    int rc = cascade_filter_record(
        service, cascade_rpc_ctx_arena(ctx), cascade_rpc_ctx_deadline_ms(ctx),
        (const Cascade__V1__RecordExposureRequest *)request, &resp, err, sizeof err);
    if (rc != 0)
        return cascade_rpc_ctx_fail(ctx, rc, "%s", err);
    *response = &resp->base;
    return 0;
}

const struct cascade_rpc_method *cascade_filter_methods(size_t *n)
{
    static const struct cascade_rpc_method methods[] = {
        {"/cascade.v1.Filter/Filter", &cascade__v1__filter_request__descriptor,
         &cascade__v1__filter_response__descriptor, cascade_filter_handle_filter},
        {"/cascade.v1.Filter/RecordExposure", &cascade__v1__record_exposure_request__descriptor,
         &cascade__v1__record_exposure_response__descriptor, cascade_filter_handle_record},
    };
    *n = sizeof methods / sizeof methods[0];
    return methods;
}
