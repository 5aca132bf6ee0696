/* The evaluation loop (eval_run.h): per test user, one Recall call per
 * channel, train items filtered out, the merge of the filtered lists, and
 * every list added to its accumulator. Progress (users/s, ETA) on stderr. */
#include "eval_run.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "eval_lists.h"
#include "merge.h"
#include "progress.h"

/* One channel's filtered list for the current user. */
struct channel_list {
    Cascade__V1__Candidate **cands; /* arena */
    uint32_t *items;                /* dataset item indices, parallel to cands */
    size_t n;
    int64_t time_us;
};

/* What one user's evaluation needs besides the options. */
struct user_ctx {
    const struct cascade_ds_user *profile;
    const uint32_t *seen, *test;
    size_t n_seen, n_test;
};

static bool contains(const uint32_t *sorted, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] == x)
            return true;
        if (sorted[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Keep the candidates that are in the catalogue and not among the user's
 * train items, in the channel's order, up to `max` of them. */
static int filter_candidates(const cascade_dataset *ds, const struct user_ctx *u,
                             Cascade__V1__Candidate **in, size_t n_in, size_t max,
                             cascade_arena *arena, struct channel_list *out)
{
    size_t cap = n_in < max ? n_in : max;
    out->cands = cascade_arena_calloc(arena, cap + 1, sizeof *out->cands);
    out->items = cascade_arena_calloc(arena, cap + 1, sizeof *out->items);
    out->n = 0;
    if (!out->cands || !out->items)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n_in && out->n < cap; i++) {
        long idx = cascade_dataset_find_item(ds, in[i]->item_id);
        if (idx < 0 || contains(u->seen, u->n_seen, (uint32_t)idx))
            continue;
        out->cands[out->n] = in[i];
        out->items[out->n++] = (uint32_t)idx;
    }
    return 0;
}

/* Run one channel for the user and filter its list. */
static int run_channel(cascade_recall *recall, const cascade_dataset *ds,
                       const struct cascade_eval_run_opts *o, const struct user_ctx *u,
                       const char *channel, cascade_arena *arena, struct channel_list *out,
                       char *err, size_t errlen)
{
    Cascade__V1__RecallRequest req = CASCADE__V1__RECALL_REQUEST__INIT;
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecallResponse *resp = NULL;
    char *names[1] = {(char *)channel};
    size_t max_k = o->ks[o->n_ks - 1];
    /* Ask for enough that K candidates remain after the train items go. */
    size_t quota = max_k + u->n_seen;
    user.user_id = (char *)u->profile->id;
    user.city = u->profile->city;
    user.geohash = (char *)u->profile->geohash;
    user.request_time_s = o->request_time_s;
    req.user = &user;
    req.channels = names;
    req.n_channels = 1;
    req.quota = (uint32_t)(quota < o->max_quota ? quota : o->max_quota);
    int64_t t0 = cascade_now_us();
    int rc = cascade_recall_run(recall, arena, INT64_MAX, &req, &resp, err, errlen);
    out->time_us = cascade_now_us() - t0;
    if (rc != 0)
        return rc;
    return filter_candidates(ds, u, resp->candidates, resp->n_candidates, max_k, arena, out);
}

/* Merge the filtered lists of the merge channels; the time is theirs plus the merge's. */
static int run_merge(const cascade_dataset *ds, const struct cascade_eval_run_opts *o,
                     const int *merge_row, const struct channel_list *lists, cascade_arena *arena,
                     struct channel_list *out)
{
    struct cascade_merge_input in[CASCADE_EVAL_MAX_CHANNELS];
    Cascade__V1__Candidate **merged = NULL;
    size_t n_merged = 0, max_k = o->ks[o->n_ks - 1];
    int64_t time_us = 0;
    for (size_t m = 0; m < o->n_merge; m++) {
        const struct channel_list *l = &lists[merge_row[m]];
        in[m] = (struct cascade_merge_input){.channel = o->merge[m].name,
                                             .weight = o->merge[m].weight,
                                             .quota = o->merge[m].quota,
                                             .candidates = l->cands,
                                             .n_candidates = l->n};
        time_us += l->time_us;
    }
    int64_t t0 = cascade_now_us();
    int rc = cascade_merge_channels(in, o->n_merge, max_k, arena, &merged, &n_merged);
    if (rc != 0)
        return rc;
    out->items = cascade_arena_calloc(arena, n_merged + 1, sizeof *out->items);
    if (!out->items)
        return CASCADE_ENOMEM;
    /* Every merged item came from a filtered list, so it is in the catalogue. */
    out->n = 0;
    for (size_t i = 0; i < n_merged; i++) {
        long idx = cascade_dataset_find_item(ds, merged[i]->item_id);
        if (idx >= 0)
            out->items[out->n++] = (uint32_t)idx;
    }
    out->time_us = time_us + (cascade_now_us() - t0);
    return 0;
}

/* Append a filtered list with its channel scores to the kept lists. */
static int keep_list(struct cascade_eval_lists *keep, const char *channel,
                     const struct channel_list *l, cascade_arena *arena)
{
    float *scores = cascade_arena_calloc(arena, l->n + 1, sizeof *scores);
    if (!scores)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        scores[i] = cascade_merge_channel_score(l->cands[i], channel);
    return cascade_eval_lists_append(keep, l->items, scores, l->n, l->time_us);
}

/* Evaluate test user k: every channel, then the merge. */
static int eval_user(cascade_recall *recall, const struct cascade_eval_split *split, size_t k,
                     const struct cascade_eval_run_opts *o, const int *merge_row,
                     cascade_arena *arena, struct cascade_eval_result *res, char *err,
                     size_t errlen)
{
    const cascade_dataset *ds = split->train;
    struct channel_list lists[CASCADE_EVAL_MAX_CHANNELS + 1];
    struct user_ctx u = {
        .profile = &ds->users[split->users[k]],
        .seen = split->seen + split->seen_off[k],
        .n_seen = split->seen_off[k + 1] - split->seen_off[k],
        .test = split->test + split->test_off[k],
        .n_test = split->test_off[k + 1] - split->test_off[k],
    };
    char msg[512] = "";
    int rc;
    for (size_t c = 0; c < o->n_channels; c++) {
        if ((rc = run_channel(recall, ds, o, &u, o->channels[c], arena, &lists[c], msg,
                              sizeof msg)) != 0) {
            snprintf(err, errlen, "channel %s, user %s: %s", o->channels[c], u.profile->id,
                     msg[0] ? msg : cascade_strerror(rc));
            return rc;
        }
        cascade_eval_acc_add(&res->acc[c], lists[c].items, lists[c].n, u.test, u.n_test,
                             lists[c].time_us);
        if (o->capture && (rc = keep_list(o->capture, o->channels[c], &lists[c], arena)) != 0) {
            snprintf(err, errlen, "keeping the lists of user %s: out of memory", u.profile->id);
            return rc;
        }
    }
    if (o->n_merge == 0)
        return 0;
    struct channel_list *merged = &lists[o->n_channels];
    if ((rc = run_merge(ds, o, merge_row, lists, arena, merged)) != 0) {
        snprintf(err, errlen, "merge, user %s: out of memory", u.profile->id);
        return rc;
    }
    cascade_eval_acc_add(&res->acc[o->n_channels], merged->items, merged->n, u.test, u.n_test,
                         merged->time_us);
    return 0;
}

/* Rows of the result, and for each merge channel the row it reads. */
static int result_init(const struct cascade_eval_split *split,
                       const struct cascade_eval_run_opts *o, struct cascade_eval_result *res,
                       int *merge_row, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (o->n_channels == 0 || o->n_channels > CASCADE_EVAL_MAX_CHANNELS) {
        snprintf(err, errlen, "expected 1 to %d channels, got %zu", CASCADE_EVAL_MAX_CHANNELS,
                 o->n_channels);
        return CASCADE_EINVAL;
    }
    for (size_t m = 0; m < o->n_merge; m++) {
        merge_row[m] = -1;
        for (size_t c = 0; c < o->n_channels; c++)
            if (strcmp(o->merge[m].name, o->channels[c]) == 0)
                merge_row[m] = (int)c;
        if (merge_row[m] < 0) {
            snprintf(err, errlen, "merge channel %s is not among the evaluated channels",
                     o->merge[m].name);
            return CASCADE_EINVAL;
        }
    }
    res->n_rows = o->n_channels + (o->n_merge > 0);
    for (size_t r = 0; r < res->n_rows; r++) {
        snprintf(res->names[r], sizeof res->names[r], "%s",
                 r < o->n_channels ? o->channels[r] : "merged");
        int rc = cascade_eval_acc_init(&res->acc[r], o->ks, o->n_ks, split->train->n_items);
        if (rc != 0) {
            snprintf(err, errlen, "%s",
                     rc == CASCADE_ENOMEM ? "out of memory"
                                          : "K values must be 1 to 8 ascending positive numbers");
            cascade_eval_result_free(res);
            return rc;
        }
    }
    return 0;
}

int cascade_eval_run(cascade_recall *recall, const struct cascade_eval_split *split,
                     const struct cascade_eval_run_opts *o, struct cascade_eval_result *res,
                     char *err, size_t errlen)
{
    int merge_row[CASCADE_EVAL_MAX_CHANNELS];
    struct cascade_progress progress;
    cascade_arena *arena = NULL;
    int rc = result_init(split, o, res, merge_row, err, errlen);
    if (rc != 0)
        return rc;
    if (!(arena = cascade_arena_create(1 << 20)) ||
        (o->capture &&
         cascade_eval_lists_init(o->capture, split, o->channels, o->n_channels) != 0)) {
        snprintf(err, errlen, "out of memory");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    cascade_progress_start(&progress, o->label ? o->label : "eval", "users", split->n_users,
                           o->quiet);
    for (size_t k = 0; k < split->n_users; k++) {
        cascade_arena_reset(arena);
        if ((rc = eval_user(recall, split, k, o, merge_row, arena, res, err, errlen)) != 0)
            goto out;
        cascade_progress_update(&progress, k + 1);
    }
    res->users = split->n_users;
    res->seconds = cascade_progress_finish(&progress, split->n_users);
out:
    cascade_arena_destroy(arena);
    if (rc != 0)
        cascade_eval_result_free(res);
    return rc;
}

void cascade_eval_result_free(struct cascade_eval_result *res)
{
    for (size_t r = 0; r < res->n_rows; r++)
        cascade_eval_acc_free(&res->acc[r]);
    res->n_rows = 0;
}

int cascade_eval_result_add_row(struct cascade_eval_result *res, const char *name,
                                struct cascade_eval_acc **acc)
{
    if (res->n_rows == 0 || res->n_rows == CASCADE_EVAL_MAX_ROWS)
        return CASCADE_EINVAL;
    const struct cascade_eval_acc *first = &res->acc[0];
    struct cascade_eval_acc *a = &res->acc[res->n_rows];
    int rc = cascade_eval_acc_init(a, first->ks, first->n_ks, first->n_items);
    if (rc != 0)
        return rc;
    snprintf(res->names[res->n_rows], sizeof res->names[res->n_rows], "%s", name);
    res->n_rows++;
    *acc = a;
    return 0;
}

int cascade_eval_result_row(const struct cascade_eval_result *res, const char *name)
{
    for (size_t r = 0; r < res->n_rows; r++)
        if (strcmp(res->names[r], name) == 0)
            return (int)r;
    return -1;
}
