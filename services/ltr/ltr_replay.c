/* Recall replay for the learned rankers (ltr_replay.h). */
#include "ltr_replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "eval_build.h"
#include "eval_split.h"
#include "ltr_features.h"
#include "merge.h"
#include "orch_config.h"
#include "progress.h"
#include "recall.h"
#include "store.h"

#define REPLAY_CHUNK 512
#define REPLAY_CALL_MS 10000

void cascade_ltr_replay_defaults(struct cascade_ltr_replay_opts *o)
{
    memset(o, 0, sizeof *o);
    o->holdout_frac = 0.25;
    o->random_split = true;
    o->min_interactions = 5;
    o->seed = 42;
    o->threads = 2;
    o->folds = 1;
}

void cascade_ltr_lists_free(struct cascade_ltr_lists *l)
{
    if (!l)
        return;
    free(l->off);
    free(l->X);
    free(l->y);
    free(l->user);
    free(l->item);
    memset(l, 0, sizeof *l);
}

/* Room for `rows` more rows and one more group. */
static int lists_reserve(struct cascade_ltr_lists *l, size_t rows, size_t *cap_rows,
                         size_t *cap_groups)
{
    if (l->n_groups + 2 > *cap_groups) {
        size_t c = *cap_groups ? 2 * *cap_groups : 256;
        while (c < l->n_groups + 2) /* a later fold starts with the earlier folds' groups */
            c *= 2;
        size_t *off = realloc(l->off, c * sizeof *off);
        uint32_t *user = off ? realloc(l->user, c * sizeof *user) : NULL;
        if (off)
            l->off = off;
        if (!off || !user)
            return CASCADE_ENOMEM;
        l->user = user;
        *cap_groups = c;
    }
    if (l->n_rows + rows > *cap_rows) {
        size_t c = *cap_rows ? *cap_rows : 4096;
        while (c < l->n_rows + rows)
            c *= 2;
        float *X = realloc(l->X, c * CASCADE_LTR_FEATURES * sizeof *X);
        float *y = X ? realloc(l->y, c * sizeof *y) : NULL;
        if (X)
            l->X = X;
        if (y)
            l->y = y;
        uint64_t *item = y ? realloc(l->item, c * sizeof *item) : NULL;
        if (!X || !y || !item)
            return CASCADE_ENOMEM;
        l->item = item;
        *cap_rows = c;
    }
    return 0;
}

static bool sorted_contains(const uint32_t *a, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] == x)
            return true;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Everything one user's replay needs. */
struct replay_ctx {
    const struct cascade_ltr_replay_opts *o;
    const struct cascade_eval_split *split;
    const struct cascade_orch_config *oc;
    cascade_recall *recall;
    cascade_redis *redis;
    cascade_arena *arena;
    int64_t as_of;
    size_t max_list;
    size_t channel_errors;
    char first_error[256];
};

/* The orchestrator's merged candidates for user uid with the given mix. */
static int replay_recall(struct replay_ctx *c, const char *uid,
                         const struct cascade_orch_channel_cfg *mix, size_t n_mix,
                         Cascade__V1__Candidate ***cands, size_t *n)
{
    struct cascade_merge_input *in = cascade_arena_calloc(c->arena, n_mix + 1, sizeof *in);
    Cascade__V1__UserContext *user = cascade_arena_alloc(c->arena, sizeof *user);
    size_t m = 0;
    if (!in || !user)
        return CASCADE_ENOMEM;
    cascade__v1__user_context__init(user);
    user->user_id = (char *)uid;
    user->request_time_s = c->as_of;
    for (size_t i = 0; i < n_mix; i++) {
        Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
        Cascade__V1__RecallResponse *resp = NULL;
        char *name = (char *)mix[i].name, err[256];
        req.user = user;
        req.channels = &name;
        req.n_channels = 1;
        req.quota = mix[i].quota;
        /* A channel that fails is left out, as the orchestrator leaves it out. */
        if (cascade_recall_run(c->recall, c->arena, cascade_now_ms() + REPLAY_CALL_MS, &req, &resp,
                               err, sizeof err) != 0) {
            if (c->channel_errors++ == 0)
                snprintf(c->first_error, sizeof c->first_error, "%.60s: %.180s", mix[i].name, err);
            continue;
        }
        in[m++] = (struct cascade_merge_input){.channel = mix[i].name,
                                               .weight = mix[i].weight,
                                               .quota = mix[i].quota,
                                               .candidates = resp->candidates,
                                               .n_candidates = resp->n_candidates};
    }
    return cascade_merge_channels(in, m, c->oc->merge_max, c->arena, cands, n);
}

/* Append user k's group: its merged candidates minus its train items, cut
 * at max_list, with features and labels. */
static int replay_user(struct replay_ctx *c, size_t k, struct cascade_ltr_lists *l,
                       size_t *cap_rows, size_t *cap_groups)
{
    const struct cascade_eval_split *s = c->split;
    const cascade_dataset *ds = s->train;
    uint32_t u = s->users[k];
    const char *uid = ds->users[u].id;
    cascade_v1_UserRecord *rec = cascade_arena_calloc(c->arena, 1, sizeof *rec);
    Cascade__V1__Candidate **cands = NULL;
    size_t n = 0;
    bool found = false;
    if (!rec)
        return CASCADE_ENOMEM;
    int rc = cascade_store_get_user(c->redis, c->o->ns, uid, rec, &found);
    if (rc)
        return rc;
    if (!found)
        snprintf(rec->user_id, sizeof rec->user_id, "%s", uid);
    bool cold = c->oc->n_cold_channels > 0 && rec->interactions < c->oc->cold_min_interactions;
    if ((rc = replay_recall(c, uid, cold ? c->oc->cold_channels : c->oc->channels,
                            cold ? c->oc->n_cold_channels : c->oc->n_channels, &cands, &n)))
        return rc;
    /* The Filter drops what the user already consumed: its train items. */
    const uint32_t *seen = s->seen + s->seen_off[k], *test = s->test + s->test_off[k];
    size_t n_seen = s->seen_off[k + 1] - s->seen_off[k],
           n_test = s->test_off[k + 1] - s->test_off[k];
    Cascade__V1__Candidate **keep = cascade_arena_calloc(c->arena, n + 1, sizeof *keep);
    uint32_t *idx = cascade_arena_calloc(c->arena, n + 1, sizeof *idx);
    size_t m = 0, pos = 0;
    if (!keep || !idx)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n && m < c->max_list; i++) {
        long it = cascade_dataset_find_item(ds, cands[i]->item_id);
        if (it < 0 || sorted_contains(seen, n_seen, (uint32_t)it))
            continue;
        idx[m] = (uint32_t)it;
        keep[m++] = cands[i];
    }
    for (size_t i = 0; i < m; i++)
        pos += sorted_contains(test, n_test, idx[i]);
    if (pos == 0 || m < 2) /* nothing to learn from this list */
        return 0;
    if ((rc = lists_reserve(l, m, cap_rows, cap_groups)))
        return rc;
    cascade_v1_ItemRecord *items = cascade_arena_calloc(c->arena, m + 1, sizeof *items);
    bool *have = cascade_arena_calloc(c->arena, m + 1, sizeof *have);
    uint64_t *ids = cascade_arena_calloc(c->arena, m + 1, sizeof *ids);
    if (!items || !have || !ids)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < m; i++)
        ids[i] = keep[i]->item_id;
    for (size_t off = 0; off < m; off += REPLAY_CHUNK)
        if ((rc = cascade_store_get_items(c->redis, c->o->ns, ids + off,
                                          m - off < REPLAY_CHUNK ? m - off : REPLAY_CHUNK,
                                          items + off, have + off)))
            return rc;
    if (l->n_groups == 0)
        l->off[0] = 0;
    for (size_t i = 0; i < m; i++) {
        size_t row = l->n_rows + i;
        cascade_ltr_features(rec, &items[i], keep[i], c->as_of, l->X + row * CASCADE_LTR_FEATURES);
        l->y[row] = sorted_contains(test, n_test, idx[i]) ? 1.0f : 0.0f;
        l->item[row] = keep[i]->item_id;
    }
    l->n_rows += m;
    l->positives += pos;
    l->user[l->n_groups] = u;
    l->off[++l->n_groups] = l->n_rows;
    return 0;
}

static int replay_loop(struct replay_ctx *c, struct cascade_ltr_lists *l, char *err, size_t errlen)
{
    struct cascade_progress p;
    size_t cap_rows = 0, cap_groups = 0;
    int rc = 0;
    cascade_progress_start(&p, "ltr replay", "users", c->split->n_users, c->o->quiet);
    for (size_t k = 0; k < c->split->n_users; k++) {
        cascade_arena_reset(c->arena);
        if ((rc = replay_user(c, k, l, &cap_rows, &cap_groups))) {
            snprintf(err, errlen, "replay of user %s: %s",
                     c->split->train->users[c->split->users[k]].id,
                     rc == CASCADE_ENOMEM
                         ? "out of memory"
                         : (cascade_redis_error(c->redis)[0] ? cascade_redis_error(c->redis)
                                                             : cascade_strerror(rc)));
            return rc;
        }
        cascade_progress_update(&p, k + 1);
    }
    l->replay_s += cascade_progress_finish(&p, c->split->n_users);
    l->held_out += c->split->test_items;
    if (c->channel_errors && !c->o->quiet)
        fprintf(stderr, "ltr replay: %zu channel calls failed and were left out (first: %s)\n",
                c->channel_errors, c->first_error);
    if (l->n_groups == 0) {
        snprintf(err, errlen,
                 "the replay found no held-out item among any user's candidates: the data does "
                 "not support a learned ranker");
        return CASCADE_EDATA;
    }
    return 0;
}

void cascade_ltr_replay_split_opts(const struct cascade_ltr_replay_opts *o,
                                   struct cascade_eval_split_opts *so)
{
    cascade_eval_split_defaults(so);
    so->protocol = o->random_split ? CASCADE_EVAL_PROTOCOL_RANDOM : CASCADE_EVAL_PROTOCOL_TIME;
    so->train_share = 1.0 - o->holdout_frac;
    so->split_seed = o->seed;
    so->test_frac = o->holdout_frac;
    so->min_interactions = o->min_interactions;
    so->max_users = o->max_users;
    so->seed = o->seed;
}

static int replay_split(const cascade_dataset *ds, const struct cascade_ltr_replay_opts *o,
                        struct cascade_eval_split *split, char *err, size_t errlen)
{
    struct cascade_eval_split_opts so;
    cascade_ltr_replay_split_opts(o, &so);
    int rc = cascade_eval_split_run(ds, &so, split, err, errlen);
    if (rc == 0 && split->n_users == 0) {
        snprintf(err, errlen, "no user has %zu or more interacted items: nothing to replay",
                 o->min_interactions);
        rc = CASCADE_EDATA;
    }
    return rc;
}

/* Refuse a replay of `users` users with lists of up to max_list
 * candidates when its rows could outgrow the memory (o->memory_bytes or the
 * machine's, halved): at 1M users (127k eligible) that is 140 GB, and
 * without this check the job spends the replay build (tens of minutes)
 * before its lists run out of memory. */
static int check_memory(const struct cascade_ltr_replay_opts *o, size_t users, size_t max_list,
                        size_t folds, char *err, size_t errlen)
{
    double limit = (double)o->memory_bytes;
    if (limit <= 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        if (pages <= 0 || page <= 0)
            return 0; /* unknown: nothing to check against */
        /* Half: the process holds the data set and the replay build beside
         * the lists, and Redis (often on the same machine) the replay's keys. */
        limit = (double)pages * (double)page / 2;
    }
    double per_user = (double)max_list * CASCADE_LTR_REPLAY_ROW_BYTES * (double)folds;
    double need = (double)users * per_user;
    if (need <= limit)
        return 0;
    snprintf(err, errlen,
             "replaying %zu users with up to %zu candidates each%s could take %.1f GB "
             "(%d bytes per candidate), more than the %.1f GB allowed (%s): pass --max-users %zu "
             "or fewer (a seeded sample of the users)",
             users, max_list, folds > 1 ? " per fold" : "", need / 1e9,
             CASCADE_LTR_REPLAY_ROW_BYTES, limit / 1e9,
             o->memory_bytes ? "the replay's memory limit" : "half the physical memory",
             (size_t)(limit / per_user));
    return CASCADE_ETOOBIG;
}

/* One replay: split with o's seed, build, replay every user into out. */
static int replay_fold(const cascade_dataset *ds, cascade_redis *r, cascade_redis_pool *pool,
                       const struct cascade_ltr_replay_opts *o,
                       const struct cascade_orch_config *oc, struct cascade_ltr_lists *out,
                       char *err, size_t errlen)
{
    struct cascade_eval_split split = {0};
    struct cascade_eval_build_summary bs;
    struct replay_ctx c = {.o = o, .split = &split, .oc = oc, .redis = r};
    char set[1200];
    int rc = CASCADE_ENOMEM;
    if (!(c.arena = cascade_arena_create(1 << 20))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    c.max_list = o->max_list ? o->max_list : oc->merge_max;
    if ((rc = replay_split(ds, o, &split, err, errlen)) ||
        (rc = check_memory(o, split.n_users, c.max_list, o->folds ? o->folds : 1, err, errlen)))
        goto out;
    struct cascade_eval_build_opts bo = {.ns = o->ns,
                                         .cfg = o->cfg,
                                         .threads = o->threads,
                                         .source = "cascade-ltr replay",
                                         .quiet = o->quiet,
                                         .two_tower_dir = o->two_tower_dir};
    if ((rc = cascade_eval_build_run(split.train, r, &bo, &bs, err, errlen)))
        goto out;
    if (out->n_groups == 0)
        out->as_of = bs.as_of;
    c.as_of = bs.as_of;
    out->build_s += bs.total_s;
    if (o->two_tower_dir) {
        snprintf(set, sizeof set, "recall.channels.two_tower.model_dir=%s", o->two_tower_dir);
        if ((rc = cascade_config_set(o->cfg, set, err, errlen)))
            goto out;
    }
    if (!(c.recall = cascade_recall_create(o->cfg, pool, o->ns, NULL, err, errlen))) {
        rc = CASCADE_EINVAL;
        goto out;
    }
    rc = replay_loop(&c, out, err, errlen);
out:
    cascade_recall_destroy(c.recall);
    cascade_arena_destroy(c.arena);
    cascade_eval_split_free(&split);
    return rc;
}

int cascade_ltr_replay_run(const cascade_dataset *ds, cascade_redis *r, cascade_redis_pool *pool,
                           const struct cascade_ltr_replay_opts *o, struct cascade_ltr_lists *out,
                           char *err, size_t errlen)
{
    struct cascade_orch_config *oc = calloc(1, sizeof *oc);
    int rc = CASCADE_ENOMEM;
    memset(out, 0, sizeof *out);
    if (!oc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((rc = cascade_orch_config_parse(o->cfg, oc, err, errlen)))
        goto out;
    /* Each fold splits with its own seed: more lists from the same data. */
    for (size_t f = 0; rc == 0 && f < (o->folds ? o->folds : 1); f++) {
        struct cascade_ltr_replay_opts fo = *o;
        fo.seed = o->seed + f;
        rc = replay_fold(ds, r, pool, &fo, oc, out, err, errlen);
    }
out:
    if (rc)
        cascade_ltr_lists_free(out);
    free(oc);
    return rc;
}

/* The group holding row r (off ascending, off[0] = 0, r < off[n]). */
static size_t group_of(const size_t *off, size_t n, size_t r)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (off[mid] <= r)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Where row r goes when the groups are put in the order of start[]: start[g]
 * is the first row of old group g in the new order. */
static size_t row_dest(const struct cascade_ltr_lists *l, const size_t *start, size_t r)
{
    size_t g = group_of(l->off, l->n_groups, r);
    return start[g] + (r - l->off[g]);
}

/* One row (features, label, item) of l, to carry it while rows move. */
struct row_buf {
    float x[CASCADE_LTR_FEATURES], y;
    uint64_t item;
};

static void row_swap(struct cascade_ltr_lists *l, size_t r, struct row_buf *b)
{
    struct row_buf t;
    memcpy(t.x, l->X + r * CASCADE_LTR_FEATURES, sizeof t.x);
    t.y = l->y[r];
    t.item = l->item[r];
    memcpy(l->X + r * CASCADE_LTR_FEATURES, b->x, sizeof b->x);
    l->y[r] = b->y;
    l->item[r] = b->item;
    *b = t;
}

/* The permutation is applied cycle by cycle, carrying one row at a time,
 * with one bit per row marking the rows already in place: O(rows) moves and
 * rows / 8 bytes beside the lists. */
int cascade_ltr_lists_partition(struct cascade_ltr_lists *l, bool *first, size_t *n_first)
{
    size_t G = l->n_groups, R = l->n_rows, nf = 0, a = 0, b;
    size_t *start = malloc((G + 1) * sizeof *start), *off = malloc((G + 1) * sizeof *off);
    uint32_t *user = malloc((G + 1) * sizeof *user);
    uint64_t *done = calloc(R / 64 + 1, sizeof *done);
    int rc = CASCADE_ENOMEM;
    if (!start || !off || !user || !done)
        goto out;
    size_t rows_first = 0;
    for (size_t g = 0; g < G; g++)
        if (first[g]) {
            nf++;
            rows_first += l->off[g + 1] - l->off[g];
        }
    /* New first rows and the new group order (off, user, first). */
    size_t ra = 0, rb = rows_first;
    b = nf;
    off[0] = 0;
    for (size_t g = 0; g < G; g++) {
        size_t n = l->off[g + 1] - l->off[g], *at = first[g] ? &ra : &rb, k = first[g] ? a++ : b++;
        start[g] = *at;
        *at += n;
        off[k + 1] = *at;
        user[k] = l->user[g];
    }
    for (size_t r = 0; r < R; r++) {
        if (done[r / 64] >> (r % 64) & 1)
            continue;
        struct row_buf carry;
        memcpy(carry.x, l->X + r * CASCADE_LTR_FEATURES, sizeof carry.x);
        carry.y = l->y[r];
        carry.item = l->item[r];
        size_t cur = r;
        do { /* the carried row (from cur) goes to its place; what was there is carried on */
            cur = row_dest(l, start, cur);
            row_swap(l, cur, &carry);
            done[cur / 64] |= (uint64_t)1 << (cur % 64);
        } while (cur != r);
    }
    memcpy(l->off, off, (G + 1) * sizeof *off);
    memcpy(l->user, user, G * sizeof *user);
    for (size_t g = 0; g < G; g++)
        first[g] = g < nf;
    *n_first = nf;
    rc = 0;
out:
    free(start);
    free(off);
    free(user);
    free(done);
    return rc;
}
