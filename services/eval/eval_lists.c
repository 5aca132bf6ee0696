/* Kept channel lists (eval_lists.h): growable CSR arrays filled by the
 * evaluation loop, and merges of them rebuilt as Recall candidates (item id,
 * channel score) for the orchestrator's merge function. */
#include "eval_lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "merge.h"

int cascade_eval_lists_init(struct cascade_eval_lists *l, const struct cascade_eval_split *split,
                            const char (*names)[CASCADE_EVAL_NAME_MAX], size_t n_channels)
{
    memset(l, 0, sizeof *l);
    if (n_channels == 0 || n_channels > CASCADE_EVAL_MAX_CHANNELS)
        return CASCADE_EINVAL;
    l->split = split;
    l->n_channels = n_channels;
    for (size_t c = 0; c < n_channels; c++)
        snprintf(l->channels[c], sizeof l->channels[c], "%s", names[c]);
    l->cap_lists = 1024;
    l->off = malloc((l->cap_lists + 1) * sizeof *l->off);
    l->time_us = malloc(l->cap_lists * sizeof *l->time_us);
    if (!l->off || !l->time_us)
        return CASCADE_ENOMEM;
    l->off[0] = 0;
    return 0;
}

static int grow_items(struct cascade_eval_lists *l, size_t need)
{
    if (l->n + need <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 4096;
    while (cap < l->n + need)
        cap *= 2;
    uint32_t *items = realloc(l->items, cap * sizeof *items);
    if (!items)
        return CASCADE_ENOMEM;
    l->items = items;
    float *scores = realloc(l->scores, cap * sizeof *scores);
    if (!scores)
        return CASCADE_ENOMEM;
    l->scores = scores;
    l->cap = cap;
    return 0;
}

int cascade_eval_lists_append(struct cascade_eval_lists *l, const uint32_t *items,
                              const float *scores, size_t n, int64_t time_us)
{
    if (l->n_lists == l->cap_lists) {
        size_t cap = l->cap_lists * 2;
        size_t *off = realloc(l->off, (cap + 1) * sizeof *off);
        if (!off)
            return CASCADE_ENOMEM;
        l->off = off;
        int64_t *t = realloc(l->time_us, cap * sizeof *t);
        if (!t)
            return CASCADE_ENOMEM;
        l->time_us = t;
        l->cap_lists = cap;
    }
    if (grow_items(l, n) != 0)
        return CASCADE_ENOMEM;
    if (n > 0) {
        memcpy(l->items + l->n, items, n * sizeof *items);
        memcpy(l->scores + l->n, scores, n * sizeof *scores);
    }
    l->n += n;
    l->time_us[l->n_lists] = time_us;
    l->off[++l->n_lists] = l->n;
    return 0;
}

void cascade_eval_lists_free(struct cascade_eval_lists *l)
{
    free(l->off);
    free(l->time_us);
    free(l->items);
    free(l->scores);
    memset(l, 0, sizeof *l);
}

int cascade_eval_lists_channel(const struct cascade_eval_lists *l, const char *name)
{
    for (size_t c = 0; c < l->n_channels; c++)
        if (strcmp(l->channels[c], name) == 0)
            return (int)c;
    return -1;
}

bool cascade_eval_lists_has_candidates(const struct cascade_eval_lists *l, size_t c)
{
    for (size_t i = c; i < l->n_lists; i += l->n_channels)
        if (l->off[i + 1] > l->off[i])
            return true;
    return false;
}

/* One kept list as Recall candidates: the item id and, as recall_score, the
 * channel's score (what cascade_merge_channel_score reads when a candidate
 * carries no hit), so the merge sees what it saw in the evaluation loop. */
static Cascade__V1__Candidate **as_candidates(const struct cascade_eval_lists *l, size_t list,
                                              cascade_arena *arena)
{
    const cascade_dataset *ds = l->split->train;
    size_t n = l->off[list + 1] - l->off[list];
    Cascade__V1__Candidate **out = cascade_arena_calloc(arena, n + 1, sizeof *out);
    Cascade__V1__Candidate *cands = cascade_arena_calloc(arena, n + 1, sizeof *cands);
    if (!out || !cands)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&cands[i]);
        cands[i].item_id = ds->items[l->items[l->off[list] + i]].id;
        cands[i].recall_score = l->scores[l->off[list] + i];
        out[i] = &cands[i];
    }
    return out;
}

/* Merge user k's lists and add the result to acc. */
static int merge_user(const struct cascade_eval_lists *l, size_t k, const int *chan,
                      const struct cascade_eval_merge_channel *merge, size_t n_merge, size_t max_k,
                      cascade_arena *arena, struct cascade_eval_acc *acc)
{
    const struct cascade_eval_split *s = l->split;
    struct cascade_merge_input in[CASCADE_EVAL_MAX_CHANNELS];
    Cascade__V1__Candidate **merged = NULL;
    size_t n_merged = 0;
    int64_t t0 = cascade_now_us(), recall_us = 0;
    for (size_t m = 0; m < n_merge; m++) {
        size_t list = k * l->n_channels + (size_t)chan[m];
        recall_us += l->time_us[list];
        Cascade__V1__Candidate **cands = as_candidates(l, list, arena);
        if (!cands)
            return CASCADE_ENOMEM;
        in[m] = (struct cascade_merge_input){.channel = merge[m].name,
                                             .weight = merge[m].weight,
                                             .quota = merge[m].quota,
                                             .candidates = cands,
                                             .n_candidates = l->off[list + 1] - l->off[list]};
    }
    int rc = cascade_merge_channels(in, n_merge, max_k, arena, &merged, &n_merged);
    if (rc != 0)
        return rc;
    uint32_t *items = cascade_arena_calloc(arena, n_merged + 1, sizeof *items);
    if (!items)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < n_merged; i++) {
        long idx = cascade_dataset_find_item(s->train, merged[i]->item_id);
        if (idx >= 0)
            items[n++] = (uint32_t)idx;
    }
    cascade_eval_acc_add(acc, items, n, s->test + s->test_off[k],
                         s->test_off[k + 1] - s->test_off[k], recall_us + (cascade_now_us() - t0));
    return 0;
}

int cascade_eval_lists_merge(const struct cascade_eval_lists *l,
                             const struct cascade_eval_merge_channel *merge, size_t n_merge,
                             size_t max_k, struct cascade_eval_acc *acc, char *err, size_t errlen)
{
    int chan[CASCADE_EVAL_MAX_CHANNELS];
    cascade_arena *arena = NULL;
    int rc = CASCADE_EINVAL;
    if (n_merge > CASCADE_EVAL_MAX_CHANNELS || l->n_lists != l->split->n_users * l->n_channels) {
        snprintf(err, errlen, "merge of kept lists: %zu lists for %zu users and %zu channels",
                 l->n_lists, l->split->n_users, l->n_channels);
        return rc;
    }
    for (size_t m = 0; m < n_merge; m++)
        if ((chan[m] = cascade_eval_lists_channel(l, merge[m].name)) < 0) {
            snprintf(err, errlen, "merge channel %s was not evaluated", merge[m].name);
            return rc;
        }
    if (!(arena = cascade_arena_create(1 << 20))) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < l->split->n_users; k++) {
        cascade_arena_reset(arena);
        if ((rc = merge_user(l, k, chan, merge, n_merge, max_k, arena, acc)) != 0)
            goto out;
    }
    rc = 0;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "merge of kept lists: out of memory");
    cascade_arena_destroy(arena);
    return rc;
}
