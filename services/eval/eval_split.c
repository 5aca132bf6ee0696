/* Per-user time split (eval_split.h): order each user's interacted items by
 * first interaction, hold out the tail, keep what came before as train, and
 * copy the train events into a new dataset with the same users and items. */
#include "eval_split.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"

/* First interaction of a user with an item. */
struct first_touch {
    uint32_t item;
    int64_t ts;
    uint64_t tie; /* seeded order among equal times */
};

/* A growable array of uint32 / size_t. */
struct u32_vec {
    uint32_t *v;
    size_t n, cap;
};

static int u32_push(struct u32_vec *a, uint32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return CASCADE_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Everything collected per eligible user before sampling. */
struct eligible {
    struct u32_vec users, test, seen;
    struct u32_vec test_end, seen_end; /* running ends into test / seen */
    int64_t *split_ts;
    size_t cap_ts;
};

static void eligible_free(struct eligible *el)
{
    free(el->users.v);
    free(el->test.v);
    free(el->seen.v);
    free(el->test_end.v);
    free(el->seen_end.v);
    free(el->split_ts);
}

static int cmp_item_then_ts(const void *pa, const void *pb)
{
    const struct first_touch *a = pa, *b = pb;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

static int cmp_ts_then_tie(const void *pa, const void *pb)
{
    const struct first_touch *a = pa, *b = pb;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->tie != b->tie)
        return a->tie < b->tie ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

static int cmp_size(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return (a > b) - (a < b);
}

static uint64_t tie_hash(uint64_t seed, uint32_t user, uint32_t item)
{
    uint64_t x = seed ^ (((uint64_t)user << 32) | item);
    return cascade_rng_splitmix64(&x);
}

void cascade_eval_split_defaults(struct cascade_eval_split_opts *o)
{
    memset(o, 0, sizeof *o);
    o->test_frac = 0.2;
    o->min_interactions = 5;
    o->max_users = 0;
    o->seed = 1;
    o->protocol = CASCADE_EVAL_PROTOCOL_TIME;
    o->train_share = 0.75;
    o->split_seed = 42;
    cascade_behaviour_weights_default(&o->weights);
}

/* The user's distinct interacted items with their first interaction time,
 * in time order (equal times in seeded order). Returns the count. */
static size_t first_touches(const cascade_dataset *ds, const struct cascade_user_events *ue,
                            const struct cascade_eval_split_opts *o, uint32_t u,
                            struct first_touch *buf)
{
    size_t n = 0;
    for (size_t j = ue->off[u]; j < ue->off[u + 1]; j++) {
        const struct cascade_ds_event *e = &ds->events[ue->idx[j]];
        if (e->type <= CASCADE_EV_MAX && o->weights.w[e->type] > 0)
            buf[n++] = (struct first_touch){e->item, e->ts, 0};
    }
    if (n == 0)
        return 0;
    qsort(buf, n, sizeof *buf, cmp_item_then_ts);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || buf[m - 1].item != buf[i].item)
            buf[m++] = buf[i];
    for (size_t i = 0; i < m; i++)
        buf[i].tie = tie_hash(o->seed, u, buf[i].item);
    qsort(buf, m, sizeof *buf, cmp_ts_then_tie);
    return m;
}

/* Number of items held out of n. */
static size_t held_out(size_t n, double frac)
{
    size_t t = (size_t)floor(frac * (double)n + 0.5);
    if (t < 1)
        t = 1;
    if (t > n - 1)
        t = n - 1;
    return t;
}

/* Close user u's entry in el: sort the sets it pushed since seen_start /
 * test_start and record the user with its split time. */
static int record_user(struct eligible *el, uint32_t u, int64_t split_ts, size_t seen_start,
                       size_t test_start)
{
    int rc;
    qsort(el->seen.v + seen_start, el->seen.n - seen_start, sizeof(uint32_t), cmp_u32);
    qsort(el->test.v + test_start, el->test.n - test_start, sizeof(uint32_t), cmp_u32);
    if (el->users.n == el->cap_ts) {
        size_t cap = el->cap_ts ? el->cap_ts * 2 : 1024;
        int64_t *v = realloc(el->split_ts, cap * sizeof *v);
        if (!v)
            return CASCADE_ENOMEM;
        el->split_ts = v;
        el->cap_ts = cap;
    }
    el->split_ts[el->users.n] = split_ts;
    if ((rc = u32_push(&el->users, u)) != 0 ||
        (rc = u32_push(&el->seen_end, (uint32_t)el->seen.n)) ||
        (rc = u32_push(&el->test_end, (uint32_t)el->test.n)))
        return rc;
    return 0;
}

/* Split one eligible user by time: mark its train events in keep[], record
 * its sets. */
static int split_user(const cascade_dataset *ds, const struct cascade_user_events *ue, uint32_t u,
                      struct first_touch *ft, size_t n, double frac, uint32_t *stamp, bool *keep,
                      struct eligible *el)
{
    size_t cut = n - held_out(n, frac);
    int64_t split_ts = ft[cut].ts;
    size_t seen_start = el->seen.n, test_start = el->test.n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i < cut) {
            stamp[ft[i].item] = u + 1;
            rc = u32_push(&el->seen, ft[i].item);
        } else {
            rc = u32_push(&el->test, ft[i].item);
        }
    }
    if (rc != 0)
        return rc;
    for (size_t j = ue->off[u]; j < ue->off[u + 1]; j++) {
        const struct cascade_ds_event *e = &ds->events[ue->idx[j]];
        keep[ue->idx[j]] = e->ts < split_ts || (e->ts == split_ts && stamp[e->item] == u + 1);
    }
    return record_user(el, u, split_ts, seen_start, test_start);
}

/* Split one eligible user at random (eval_split.h): shuffle its items (in
 * item order first, so the result depends only on the seed and the user),
 * keep round(share · n) in train, hold out the rest with all their events. */
static int split_user_random(const cascade_dataset *ds, const struct cascade_user_events *ue,
                             uint32_t u, struct first_touch *ft, size_t n,
                             const struct cascade_eval_split_opts *o, uint32_t *stamp, bool *keep,
                             struct eligible *el)
{
    struct cascade_rng rng;
    uint64_t x = o->split_seed ^ ((uint64_t)u * 0x9E3779B97F4A7C15ULL);
    size_t n_train = n - held_out(n, 1.0 - o->train_share);
    size_t seen_start = el->seen.n, test_start = el->test.n;
    int rc = 0;
    qsort(ft, n, sizeof *ft, cmp_item_then_ts);
    cascade_rng_seed(&rng, cascade_rng_splitmix64(&x));
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)cascade_rng_below(&rng, i + 1);
        struct first_touch t = ft[i];
        ft[i] = ft[j];
        ft[j] = t;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i < n_train) {
            rc = u32_push(&el->seen, ft[i].item);
        } else {
            stamp[ft[i].item] = u + 1;
            rc = u32_push(&el->test, ft[i].item);
        }
    }
    if (rc != 0)
        return rc;
    for (size_t j = ue->off[u]; j < ue->off[u + 1]; j++)
        keep[ue->idx[j]] = stamp[ds->events[ue->idx[j]].item] != u + 1;
    return record_user(el, u, INT64_MAX, seen_start, test_start);
}

/* Walk every user; fills keep[] (train events) and el (eligible users). */
static int split_users(const cascade_dataset *ds, const struct cascade_eval_split_opts *o,
                       bool *keep, struct eligible *el, struct cascade_eval_split *out)
{
    struct cascade_user_events ue = {0};
    struct first_touch *ft = NULL;
    uint32_t *stamp = calloc(ds->n_items ? ds->n_items : 1, sizeof *stamp);
    int rc = cascade_user_events_build(ds, &ue);
    if (rc != 0 || !stamp)
        goto nomem;
    size_t most = 1;
    for (size_t u = 0; u < ds->n_users; u++)
        if (ue.off[u + 1] - ue.off[u] > most)
            most = ue.off[u + 1] - ue.off[u];
    if (!(ft = malloc(most * sizeof *ft)))
        goto nomem;
    for (size_t i = 0; i < ds->n_events; i++)
        keep[i] = true;
    for (uint32_t u = 0; u < ds->n_users; u++) {
        size_t n = first_touches(ds, &ue, o, u, ft);
        if (n == 0)
            continue;
        if (n < o->min_interactions) {
            out->below_min++;
            continue;
        }
        rc = o->protocol == CASCADE_EVAL_PROTOCOL_RANDOM
                 ? split_user_random(ds, &ue, u, ft, n, o, stamp, keep, el)
                 : split_user(ds, &ue, u, ft, n, o->test_frac, stamp, keep, el);
        if (rc != 0)
            goto out;
    }
    rc = 0;
    goto out;
nomem:
    rc = CASCADE_ENOMEM;
out:
    free(ft);
    free(stamp);
    cascade_user_events_free(&ue);
    return rc;
}

/* Positions (into el) of the users to evaluate: all, or a seeded sample of
 * max_users of them, ascending. */
static size_t *sample_users(size_t eligible, size_t max_users, uint64_t seed, size_t *n)
{
    size_t *pos = malloc((eligible ? eligible : 1) * sizeof *pos);
    if (!pos)
        return NULL;
    for (size_t i = 0; i < eligible; i++)
        pos[i] = i;
    *n = eligible;
    if (max_users > 0 && max_users < eligible) {
        struct cascade_rng rng;
        cascade_rng_seed(&rng, seed ^ 0x5eed5eedULL);
        for (size_t i = 0; i < max_users; i++) {
            size_t j = i + (size_t)cascade_rng_below(&rng, eligible - i);
            size_t t = pos[i];
            pos[i] = pos[j];
            pos[j] = t;
        }
        *n = max_users;
        qsort(pos, *n, sizeof *pos, cmp_size);
    }
    return pos;
}

/* Copy the sampled users' sets from el into out's CSR arrays. */
static int copy_sets(const struct eligible *el, const size_t *pos, size_t n,
                     struct cascade_eval_split *out)
{
    size_t n_test = 0, n_seen = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = pos[k];
        n_test += el->test_end.v[p] - (p ? el->test_end.v[p - 1] : 0);
        n_seen += el->seen_end.v[p] - (p ? el->seen_end.v[p - 1] : 0);
    }
    out->users = malloc((n ? n : 1) * sizeof *out->users);
    out->split_ts = malloc((n ? n : 1) * sizeof *out->split_ts);
    out->test_off = malloc((n + 1) * sizeof *out->test_off);
    out->seen_off = malloc((n + 1) * sizeof *out->seen_off);
    out->test = malloc((n_test ? n_test : 1) * sizeof *out->test);
    out->seen = malloc((n_seen ? n_seen : 1) * sizeof *out->seen);
    if (!out->users || !out->split_ts || !out->test_off || !out->seen_off || !out->test ||
        !out->seen)
        return CASCADE_ENOMEM;
    out->test_off[0] = out->seen_off[0] = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = pos[k];
        size_t t0 = p ? el->test_end.v[p - 1] : 0, t1 = el->test_end.v[p];
        size_t s0 = p ? el->seen_end.v[p - 1] : 0, s1 = el->seen_end.v[p];
        out->users[k] = el->users.v[p];
        out->split_ts[k] = el->split_ts[p];
        memcpy(out->test + out->test_off[k], el->test.v + t0, (t1 - t0) * sizeof(uint32_t));
        memcpy(out->seen + out->seen_off[k], el->seen.v + s0, (s1 - s0) * sizeof(uint32_t));
        out->test_off[k + 1] = out->test_off[k] + (t1 - t0);
        out->seen_off[k + 1] = out->seen_off[k] + (s1 - s0);
    }
    out->n_users = n;
    out->test_items = n_test;
    return 0;
}

/* A dataset with every user and item of ds and the events marked in keep. */
static int train_dataset(const cascade_dataset *ds, const bool *keep,
                         struct cascade_eval_split *out)
{
    int rc;
    if (!(out->train = cascade_dataset_create()))
        return CASCADE_ENOMEM;
    for (size_t u = 0; u < ds->n_users; u++)
        if ((rc = cascade_dataset_add_user(out->train, &ds->users[u], NULL)) != 0)
            return rc;
    for (size_t i = 0; i < ds->n_items; i++)
        if ((rc = cascade_dataset_add_item(out->train, &ds->items[i], NULL)) != 0)
            return rc;
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (!keep[i]) {
            out->dropped_events++;
            continue;
        }
        if ((rc = cascade_dataset_add_event_idx(out->train, e->ts, e->user, e->item, e->type,
                                                e->value)) != 0)
            return rc;
        out->train_events++;
    }
    return 0;
}

static int check_opts(const struct cascade_eval_split_opts *o, char *err, size_t errlen)
{
    if (!(o->test_frac > 0 && o->test_frac < 1)) {
        snprintf(err, errlen, "test fraction %g out of range: expected a value in (0, 1)",
                 o->test_frac);
        return CASCADE_EINVAL;
    }
    if (o->protocol == CASCADE_EVAL_PROTOCOL_RANDOM &&
        !(o->train_share > 0 && o->train_share < 1)) {
        snprintf(err, errlen, "train share %g out of range: expected a value in (0, 1)",
                 o->train_share);
        return CASCADE_EINVAL;
    }
    if (o->min_interactions < 2) {
        snprintf(err, errlen,
                 "minimum interactions %zu too small: a test user needs at least 2 items "
                 "(one to train on, one to hold out)",
                 o->min_interactions);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_eval_split_run(const cascade_dataset *ds, const struct cascade_eval_split_opts *o,
                           struct cascade_eval_split *out, char *err, size_t errlen)
{
    struct eligible el = {0};
    size_t *pos = NULL, n = 0;
    bool *keep = NULL;
    memset(out, 0, sizeof *out);
    int rc = check_opts(o, err, errlen);
    if (rc != 0)
        return rc;
    if (!(keep = malloc((ds->n_events ? ds->n_events : 1) * sizeof *keep))) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    if ((rc = split_users(ds, o, keep, &el, out)) != 0)
        goto out;
    out->eligible = el.users.n;
    if (!(pos = sample_users(el.users.n, o->max_users, o->seed, &n))) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    if ((rc = copy_sets(&el, pos, n, out)) != 0 || (rc = train_dataset(ds, keep, out)) != 0)
        goto out;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "split: out of memory (%zu users, %zu events)", ds->n_users,
                 ds->n_events);
    else if (rc != 0 && rc != CASCADE_EINVAL)
        snprintf(err, errlen, "split: copying the train events failed: %s", cascade_strerror(rc));
    if (rc != 0)
        cascade_eval_split_free(out);
    free(pos);
    free(keep);
    eligible_free(&el);
    return rc;
}

/* Interacted items of user u of ds (indices into ds's items) pushed to v,
 * each once, with mark[item] set to tag; items already tagged are skipped.
 * map (may be NULL) translates ds item indices to the target catalogue
 * (-1 = unknown there: counted in *unknown). */
static int push_interacted(const cascade_dataset *ds, const struct cascade_user_events *ue,
                           uint32_t u, const struct cascade_behaviour_weights *w, const long *map,
                           uint32_t *mark, uint32_t tag, struct u32_vec *v, size_t *unknown)
{
    int rc = 0;
    for (size_t j = ue->off[u]; j < ue->off[u + 1] && rc == 0; j++) {
        const struct cascade_ds_event *e = &ds->events[ue->idx[j]];
        if (e->type > CASCADE_EV_MAX || w->w[e->type] <= 0)
            continue;
        long item = map ? map[e->item] : (long)e->item;
        if (item < 0) {
            (*unknown)++;
            continue;
        }
        if (mark[item] == tag)
            continue;
        mark[item] = tag;
        if (v)
            rc = u32_push(v, (uint32_t)item);
    }
    return rc;
}

/* The given split's per-user sets into el (users in train order). */
static int given_users(const cascade_dataset *train, const cascade_dataset *test,
                       const struct cascade_eval_split_opts *o, struct eligible *el,
                       struct cascade_eval_split *out)
{
    struct cascade_user_events tr = {0}, te = {0};
    uint32_t *seen_mark = calloc(train->n_items ? train->n_items : 1, sizeof *seen_mark);
    long *map = malloc((test->n_items ? test->n_items : 1) * sizeof *map);
    int rc = CASCADE_ENOMEM;
    if (!seen_mark || !map || cascade_user_events_build(train, &tr) != 0 ||
        cascade_user_events_build(test, &te) != 0)
        goto out;
    for (size_t i = 0; i < test->n_items; i++)
        map[i] = cascade_dataset_find_item(train, test->items[i].id);
    for (size_t tu = 0; tu < test->n_users; tu++)
        if (te.off[tu + 1] > te.off[tu] &&
            cascade_dataset_find_user(train, test->users[tu].id) < 0) {
            out->unknown_users++;
            out->dropped_events += te.off[tu + 1] - te.off[tu];
        }
    rc = 0;
    for (uint32_t u = 0; u < train->n_users && rc == 0; u++) {
        long tu = cascade_dataset_find_user(test, train->users[u].id);
        if (tu < 0)
            continue;
        size_t seen_start = el->seen.n, test_start = el->test.n, ignored = 0;
        /* Train items first (tag 2u+1), then the test items not among them. */
        if ((rc = push_interacted(train, &tr, u, &o->weights, NULL, seen_mark, 2 * u + 1, &el->seen,
                                  &ignored)) != 0 ||
            (rc = push_interacted(test, &te, (uint32_t)tu, &o->weights, map, seen_mark, 2 * u + 1,
                                  &el->test, &out->dropped_events)) != 0)
            break;
        if (el->test.n == test_start) {
            el->seen.n = seen_start;
            continue;
        }
        rc = record_user(el, u, INT64_MAX, seen_start, test_start);
    }
out:
    free(map);
    free(seen_mark);
    cascade_user_events_free(&tr);
    cascade_user_events_free(&te);
    return rc;
}

int cascade_eval_split_given(cascade_dataset *train, const cascade_dataset *test,
                             const struct cascade_eval_split_opts *o,
                             struct cascade_eval_split *out, char *err, size_t errlen)
{
    struct eligible el = {0};
    size_t *pos = NULL, n = 0;
    memset(out, 0, sizeof *out);
    out->train = train;
    out->train_events = train->n_events;
    int rc = given_users(train, test, o, &el, out);
    if (rc == 0) {
        out->eligible = el.users.n;
        if (!(pos = sample_users(el.users.n, o->max_users, o->seed, &n)))
            rc = CASCADE_ENOMEM;
    }
    if (rc == 0)
        rc = copy_sets(&el, pos, n, out);
    if (rc != 0) {
        snprintf(err, errlen, "given split: out of memory (%zu train users, %zu test events)",
                 train->n_users, test->n_events);
        cascade_eval_split_free(out);
    }
    free(pos);
    eligible_free(&el);
    return rc;
}

void cascade_eval_split_free(struct cascade_eval_split *s)
{
    cascade_dataset_destroy(s->train);
    free(s->users);
    free(s->split_ts);
    free(s->test_off);
    free(s->test);
    free(s->seen_off);
    free(s->seen);
    memset(s, 0, sizeof *s);
}
