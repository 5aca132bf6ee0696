/* Merge of recall channel outputs: quota, per-channel max normalisation,
 * weighted sum, dedupe with provenance, sort and cap. An id map (idmap.h)
 * keyed by item id finds an item's merged entry in O(1). */
#include "merge.h"

#include <stdbool.h>
#include <string.h>

#include "error.h"
#include "idmap.h"
#include "request.h"

/* Merged entry under construction. The candidate lives in the entry and its
 * first two hit pointers too (most items are found by one or two channels);
 * beyond those the hit array grows in the arena. The entries and the hits
 * come from one arena block each per merge, not one allocation per item and
 * per hit. */
struct merged {
    Cascade__V1__Candidate cand;
    Cascade__V1__ChannelHit *first_hits[2];
    size_t hit_cap;
    size_t last_channel; /* index+1 of the last channel that hit it (in-channel dedupe) */
};

/* The merge's storage: entries and hits, each at most one per channel row. */
struct merge_store {
    struct merged *all;
    size_t n_all;
    Cascade__V1__ChannelHit *hits;
    size_t n_hits;
};

float cascade_merge_channel_score(const Cascade__V1__Candidate *c, const char *channel)
{
    const Cascade__V1__ChannelHit *hit = cascade_merge_find_hit(c, channel);
    if (hit)
        return hit->score;
    if (c->n_channels > 0 && c->channels[0])
        return c->channels[0]->score;
    return c->recall_score;
}

const Cascade__V1__ChannelHit *cascade_merge_find_hit(const Cascade__V1__Candidate *c,
                                                      const char *channel)
{
    /* Hits the merge made point at the caller's own name string: compare
     * pointers before the strings. */
    for (size_t i = 0; i < c->n_channels; i++)
        if (c->channels[i] && c->channels[i]->channel == channel)
            return c->channels[i];
    for (size_t i = 0; i < c->n_channels; i++)
        if (c->channels[i] && c->channels[i]->channel &&
            strcmp(c->channels[i]->channel, channel) == 0)
            return c->channels[i];
    return NULL;
}

void cascade_merge_count_channels(Cascade__V1__Candidate *const *c, size_t n,
                                  const char *const *names, size_t n_names, size_t *counts)
{
    if (n_names > 64) { /* beyond the bitmask below: one name at a time */
        for (size_t k = 0; k < n_names; k++)
            counts[k] = cascade_merge_count_channel(c, n, names[k]);
        return;
    }
    for (size_t k = 0; k < n_names; k++)
        counts[k] = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == NULL)
            continue;
        /* One pass over the candidate's hits: each hit's channel by pointer,
         * else by name; a channel is counted once per candidate. */
        uint64_t seen = 0;
        for (size_t h = 0; h < c[i]->n_channels; h++) {
            const char *name = c[i]->channels[h] ? c[i]->channels[h]->channel : NULL;
            size_t k = 0;
            if (name == NULL)
                continue;
            while (k < n_names && names[k] != name)
                k++;
            for (size_t j = 0; k == n_names && j < n_names; j++)
                if (strcmp(names[j], name) == 0)
                    k = j;
            if (k < n_names && !(seen & (1ULL << k))) {
                seen |= 1ULL << k;
                counts[k]++;
            }
        }
    }
}

size_t cascade_merge_count_channel(Cascade__V1__Candidate *const *c, size_t n, const char *channel)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i] && cascade_merge_find_hit(c[i], channel))
            count++;
    return count;
}

static size_t kept_count(const struct cascade_merge_input *in)
{
    return in->n_candidates < in->quota ? in->n_candidates : in->quota;
}

static double channel_max(const struct cascade_merge_input *in)
{
    double max = 0.0;
    for (size_t i = 0; i < kept_count(in); i++) {
        if (in->candidates[i] == NULL)
            continue;
        double s = cascade_merge_channel_score(in->candidates[i], in->channel);
        if (s > max)
            max = s;
    }
    return max;
}

static int add_hit(struct merge_store *st, struct merged *m, const char *channel, float score,
                   float norm, uint32_t rank, cascade_arena *arena)
{
    static const Cascade__V1__ChannelHit init = CASCADE__V1__CHANNEL_HIT__INIT;
    Cascade__V1__Candidate *c = &m->cand;
    if (c->n_channels == m->hit_cap) {
        size_t cap = 2 * m->hit_cap;
        Cascade__V1__ChannelHit **hits = cascade_arena_alloc(arena, cap * sizeof *hits);
        if (hits == NULL)
            return CASCADE_ENOMEM;
        memcpy(hits, c->channels, c->n_channels * sizeof *hits);
        c->channels = hits;
        m->hit_cap = cap;
    }
    Cascade__V1__ChannelHit *h = &st->hits[st->n_hits++];
    *h = init;
    h->channel = (char *)channel;
    h->score = score;
    h->norm_score = norm;
    h->rank = rank;
    c->channels[c->n_channels++] = h;
    return 0;
}

static struct merged *new_entry(struct merge_store *st, const Cascade__V1__Candidate *src)
{
    static const Cascade__V1__Candidate init = CASCADE__V1__CANDIDATE__INIT;
    struct merged *m = &st->all[st->n_all++];
    m->cand = init;
    m->cand.item_id = src->item_id;
    m->cand.attrs = src->attrs;
    m->cand.channels = m->first_hits;
    m->hit_cap = 2;
    m->last_channel = 0;
    return m;
}

/* Fold channel number ci into the table. */
static int merge_one(const struct cascade_merge_input *in, size_t ci, cascade_idmap *t,
                     struct merge_store *st, cascade_arena *arena)
{
    double max = channel_max(in);
    for (size_t r = 0; r < kept_count(in); r++) {
        const Cascade__V1__Candidate *src = in->candidates[r];
        if (src == NULL)
            continue;
        bool created;
        struct cascade_idmap_entry *e = cascade_idmap_upsert(t, src->item_id, &created);
        struct merged *m;
        if (!e)
            return CASCADE_ENOMEM;
        if (created) {
            m = new_entry(st, src);
            e->index = (uint32_t)st->n_all - 1;
        } else {
            m = &st->all[e->index];
            if (m->last_channel == ci + 1)
                continue; /* the channel repeated an item: keep its best (first) entry */
        }
        m->last_channel = ci + 1;
        float score = cascade_merge_channel_score(src, in->channel);
        double norm = max > 0.0 ? (score > 0.0f ? score / max : 0.0) : 1.0;
        m->cand.recall_score += (float)(in->weight * norm);
        if (m->cand.attrs == NULL)
            m->cand.attrs = src->attrs;
        int rc = add_hit(st, m, in->channel, score, (float)norm, (uint32_t)r, arena);
        if (rc)
            return rc;
    }
    return 0;
}

int cascade_merge_channels(const struct cascade_merge_input *in, size_t n, size_t max_out,
                           cascade_arena *arena, Cascade__V1__Candidate ***out, size_t *n_out)
{
    size_t total = 0;
    cascade_idmap t;
    struct merge_store st = {0};
    Cascade__V1__Candidate **list;
    int rc;

    *out = NULL;
    *n_out = 0;
    for (size_t i = 0; i < n; i++)
        total += kept_count(&in[i]);
    if ((rc = cascade_idmap_init(&t, arena, total)))
        return rc;
    st.all = cascade_arena_alloc(arena, (total ? total : 1) * sizeof *st.all);
    st.hits = cascade_arena_alloc(arena, (total ? total : 1) * sizeof *st.hits);
    list = cascade_arena_alloc(arena, (total ? total : 1) * sizeof *list);
    if (st.all == NULL || st.hits == NULL || list == NULL)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if ((rc = merge_one(&in[i], i, &t, &st, arena)))
            return rc;
    for (size_t i = 0; i < st.n_all; i++)
        list[i] = &st.all[i].cand;
    if ((rc = cascade_request_sort_candidates(list, st.n_all, CASCADE_SCORE_RECALL, arena)))
        return rc;
    *out = list;
    *n_out = st.n_all < max_out ? st.n_all : max_out;
    return 0;
}
