/* Request checks shared by the stages and the orchestrator, and the
 * deterministic candidate sort (score desc, item id asc, input position). */
#include "request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

bool cascade_request_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p++;
        size_t more;
        uint32_t cp, min;
        if (c < 0x80)
            continue;
        if (c >= 0xc2 && c <= 0xdf)
            more = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            more = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            more = 3, cp = c & 0x07, min = 0x10000;
        else
            return false; /* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
        if ((size_t)(end - p) < more)
            return false;
        for (size_t i = 0; i < more; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (*p & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}

bool cascade_request_id_valid(const char *id)
{
    if (!id || !id[0])
        return false;
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= CASCADE_REQUEST_ID_MAX)
            return false;
    }
    return true;
}

int cascade_request_check_string(const char *field, const char *s, size_t max, char *err,
                                 size_t errlen)
{
    size_t len = s ? strlen(s) : 0;
    if (len > max) {
        snprintf(err, errlen, "%s: %zu bytes, at most %zu", field, len, max);
        return CASCADE_EINVAL;
    }
    if (!cascade_request_utf8_valid(s, len)) {
        snprintf(err, errlen, "%s is not valid UTF-8", field);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_request_check_user_id(const char *field, const char *user_id, char *err, size_t errlen)
{
    if (!user_id || !user_id[0]) {
        snprintf(err, errlen, "%s is empty", field);
        return CASCADE_EINVAL;
    }
    if (strlen(user_id) > CASCADE_USER_ID_MAX) {
        snprintf(err, errlen, "%s is longer than %d bytes", field, CASCADE_USER_ID_MAX);
        return CASCADE_EINVAL;
    }
    return cascade_request_check_string(field, user_id, CASCADE_USER_ID_MAX, err, errlen);
}

int cascade_request_check_user(const Cascade__V1__UserContext *user, char *err, size_t errlen)
{
    int rc =
        cascade_request_check_user_id("user.user_id", user ? user->user_id : NULL, err, errlen);
    if (rc == 0 && user->request_time_s < 0) {
        snprintf(err, errlen, "user.request_time_s %lld is negative",
                 (long long)user->request_time_s);
        rc = CASCADE_EINVAL;
    }
    if (rc == 0)
        rc = cascade_request_check_string("user.geohash", user->geohash,
                                          CASCADE_REQUEST_GEOHASH_MAX, err, errlen);
    if (rc == 0)
        rc = cascade_request_check_string("user.device", user->device, CASCADE_REQUEST_DEVICE_MAX,
                                          err, errlen);
    if (rc == 0 && user->request_id && user->request_id[0] &&
        !cascade_request_id_valid(user->request_id)) {
        snprintf(err, errlen, "user.request_id is not 1..%d characters of [A-Za-z0-9._:-]",
                 CASCADE_REQUEST_ID_MAX);
        rc = CASCADE_EINVAL;
    }
    return rc;
}

/* A candidate's channel hits: count, presence, channel name. */
static int check_hits(const Cascade__V1__Candidate *c, size_t i, char *err, size_t errlen)
{
    char field[96];
    if (c->n_channels > CASCADE_REQUEST_CHANNEL_HITS_MAX) {
        snprintf(err, errlen, "candidates[%zu].channels: %zu entries, at most %d", i, c->n_channels,
                 CASCADE_REQUEST_CHANNEL_HITS_MAX);
        return CASCADE_EINVAL;
    }
    for (size_t h = 0; h < c->n_channels; h++) {
        if (!c->channels[h]) {
            snprintf(err, errlen, "candidates[%zu].channels[%zu] is missing", i, h);
            return CASCADE_EINVAL;
        }
        /* The field's name is formatted only for a refusal: a request has
         * thousands of hits, and formatting it for each was most of the
         * check's cost. */
        const char *name = c->channels[h]->channel;
        size_t len = name ? strlen(name) : 0;
        if (len <= CASCADE_REQUEST_CHANNEL_NAME_MAX && cascade_request_utf8_valid(name, len))
            continue;
        snprintf(field, sizeof field, "candidates[%zu].channels[%zu].channel", i, h);
        return cascade_request_check_string(field, name, CASCADE_REQUEST_CHANNEL_NAME_MAX, err,
                                            errlen);
    }
    return 0;
}

/* A candidate's attributes: embedding length and values, duration. */
static int check_attrs(const Cascade__V1__ItemAttributes *a, size_t i, char *err, size_t errlen)
{
    if (!a)
        return 0;
    if (a->n_embedding > CASCADE_REQUEST_EMBEDDING_MAX) {
        snprintf(err, errlen, "candidates[%zu].attrs.embedding: %zu floats, at most %d", i,
                 a->n_embedding, CASCADE_REQUEST_EMBEDDING_MAX);
        return CASCADE_EINVAL;
    }
    for (size_t d = 0; d < a->n_embedding; d++)
        if (!isfinite(a->embedding[d])) {
            snprintf(err, errlen, "candidates[%zu].attrs.embedding[%zu] is not a finite number", i,
                     d);
            return CASCADE_EINVAL;
        }
    if (!(isfinite(a->duration_s) && a->duration_s >= 0)) {
        snprintf(err, errlen, "candidates[%zu].attrs.duration_s %g is not a finite number >= 0", i,
                 (double)a->duration_s);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_request_check_candidates(Cascade__V1__Candidate *const *candidates, size_t n,
                                     size_t max, char *err, size_t errlen)
{
    if (n > max) {
        snprintf(err, errlen, "%zu candidates exceed the limit of %zu", n, max);
        return CASCADE_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i]) {
            snprintf(err, errlen, "candidates[%zu] is missing", i);
            return CASCADE_EINVAL;
        }
        int rc = check_hits(candidates[i], i, err, errlen);
        if (rc == 0)
            rc = check_attrs(candidates[i]->attrs, i, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int cascade_request_candidates_from_columns(size_t n_candidates, const uint64_t *ids, size_t n_ids,
                                            const float *recall_scores, size_t n_recall_scores,
                                            size_t max, cascade_arena *arena,
                                            Cascade__V1__Candidate ***out, char *err, size_t errlen)
{
    *out = NULL;
    if (n_ids > 0 && n_candidates > 0) {
        snprintf(err, errlen, "item_ids and candidates are both set; send one");
        return CASCADE_EINVAL;
    }
    if (n_ids > max) {
        snprintf(err, errlen, "%zu item_ids exceed the limit of %zu", n_ids, max);
        return CASCADE_ETOOBIG;
    }
    if (n_recall_scores != 0 && n_recall_scores != n_ids) {
        snprintf(err, errlen,
                 "recall_scores: %zu entries for %zu item_ids (send none or one per id)",
                 n_recall_scores, n_ids);
        return CASCADE_EINVAL;
    }
    if (n_ids == 0)
        return 0;
    /* One block for the candidates and one for the pointers: what protobuf-c
     * would have allocated message by message, without the parsing. */
    Cascade__V1__Candidate *cands = cascade_arena_alloc(arena, n_ids * sizeof *cands);
    Cascade__V1__Candidate **ptrs = cascade_arena_alloc(arena, n_ids * sizeof *ptrs);
    if (!cands || !ptrs) {
        snprintf(err, errlen, "out of request memory for %zu candidates", n_ids);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < n_ids; i++) {
        cascade__v1__candidate__init(&cands[i]);
        cands[i].item_id = ids[i];
        cands[i].recall_score = n_recall_scores ? recall_scores[i] : 0.0f;
        ptrs[i] = &cands[i];
    }
    *out = ptrs;
    return 0;
}

/* The shape of the signal columns: one count per candidate, each at most
 * the hit bound, the hit columns as long as the counts add up to, channel
 * indexes in range and names valid. *total = the hits. */
static int check_signals(const Cascade__V1__RecallSignals *sig, size_t n, size_t *total, char *err,
                         size_t errlen)
{
    char field[64];
    size_t sum = 0;
    if (sig->n_hit_count != n) {
        snprintf(err, errlen, "recall_signals.hit_count: %zu entries for %zu candidates",
                 sig->n_hit_count, n);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (sig->hit_count[i] > CASCADE_REQUEST_CHANNEL_HITS_MAX) {
            snprintf(err, errlen, "recall_signals.hit_count[%zu]: %u hits, at most %d", i,
                     sig->hit_count[i], CASCADE_REQUEST_CHANNEL_HITS_MAX);
            return CASCADE_EINVAL;
        }
        sum += sig->hit_count[i];
    }
    if (sig->n_hit_channel != sum || sig->n_hit_norm_score != sum || sig->n_hit_rank != sum) {
        snprintf(err, errlen,
                 "recall_signals: hit_channel, hit_norm_score and hit_rank must each have %zu "
                 "entries (the sum of hit_count), have %zu, %zu and %zu",
                 sum, sig->n_hit_channel, sig->n_hit_norm_score, sig->n_hit_rank);
        return CASCADE_EINVAL;
    }
    for (size_t k = 0; k < sum; k++)
        if (sig->hit_channel[k] >= sig->n_channels) {
            snprintf(err, errlen, "recall_signals.hit_channel[%zu] %u out of range 0..%zu", k,
                     sig->hit_channel[k], sig->n_channels);
            return CASCADE_EINVAL;
        }
    for (size_t c = 0; c < sig->n_channels; c++) {
        snprintf(field, sizeof field, "recall_signals.channels[%zu]", c);
        int rc = cascade_request_check_string(field, sig->channels[c],
                                              CASCADE_REQUEST_CHANNEL_NAME_MAX, err, errlen);
        if (rc)
            return rc;
    }
    *total = sum;
    return 0;
}

int cascade_request_expand_signals(const Cascade__V1__RecallSignals *sig,
                                   Cascade__V1__Candidate *const *candidates, size_t n,
                                   cascade_arena *arena, char *err, size_t errlen)
{
    size_t total = 0;
    if (!sig || (sig->n_hit_count == 0 && sig->n_channels == 0 && sig->n_hit_channel == 0))
        return 0;
    int rc = check_signals(sig, n, &total, err, errlen);
    if (rc)
        return rc;
    Cascade__V1__ChannelHit *hits = cascade_arena_alloc(arena, (total + 1) * sizeof *hits);
    Cascade__V1__ChannelHit **ptrs = cascade_arena_alloc(arena, (total + 1) * sizeof *ptrs);
    if (!hits || !ptrs) {
        snprintf(err, errlen, "out of request memory for %zu channel hits", total);
        return CASCADE_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = candidates[i];
        if (!c) {
            snprintf(err, errlen, "candidates[%zu] is missing", i);
            return CASCADE_EINVAL;
        }
        if (c->n_channels > 0) {
            snprintf(err, errlen,
                     "candidates[%zu] carries channels and recall_signals as well; send one", i);
            return CASCADE_EINVAL;
        }
        c->channels = ptrs + k;
        c->n_channels = sig->hit_count[i];
        for (size_t h = 0; h < sig->hit_count[i]; h++, k++) {
            cascade__v1__channel_hit__init(&hits[k]);
            hits[k].channel = sig->channels[sig->hit_channel[k]];
            hits[k].norm_score = sig->hit_norm_score[k];
            hits[k].rank = sig->hit_rank[k];
            ptrs[k] = &hits[k];
        }
    }
    return 0;
}

/* One layer of an experiment context: names, bucket, parameters. */
static int check_layer(const Cascade__V1__LayerAssignment *l, size_t i, uint32_t bucket_count,
                       char *err, size_t errlen)
{
    char field[96];
    int rc;
    if (!l) {
        snprintf(err, errlen, "experiments.layers[%zu] is missing", i);
        return CASCADE_EINVAL;
    }
    snprintf(field, sizeof field, "experiments.layers[%zu].layer", i);
    if ((rc = cascade_request_check_string(field, l->layer, CASCADE_REQUEST_EXP_NAME_MAX, err,
                                           errlen)))
        return rc;
    snprintf(field, sizeof field, "experiments.layers[%zu].experiment", i);
    if ((rc = cascade_request_check_string(field, l->experiment, CASCADE_REQUEST_EXP_NAME_MAX, err,
                                           errlen)))
        return rc;
    if (bucket_count && l->bucket >= bucket_count) {
        snprintf(err, errlen, "experiments.layers[%zu].bucket %u out of range 0..%u", i, l->bucket,
                 bucket_count - 1);
        return CASCADE_EINVAL;
    }
    if (l->n_params > CASCADE_REQUEST_EXP_PARAMS_MAX) {
        snprintf(err, errlen, "experiments.layers[%zu].params: %zu entries, at most %d", i,
                 l->n_params, CASCADE_REQUEST_EXP_PARAMS_MAX);
        return CASCADE_EINVAL;
    }
    for (size_t p = 0; p < l->n_params; p++) {
        const Cascade__V1__LayerAssignment__ParamsEntry *e = l->params[p];
        if (!e) {
            snprintf(err, errlen, "experiments.layers[%zu].params[%zu] is missing", i, p);
            return CASCADE_EINVAL;
        }
        snprintf(field, sizeof field, "experiments.layers[%zu].params[%zu].key", i, p);
        if ((rc = cascade_request_check_string(field, e->key, CASCADE_REQUEST_EXP_KEY_MAX, err,
                                               errlen)))
            return rc;
        snprintf(field, sizeof field, "experiments.layers[%zu].params[%zu].value", i, p);
        if ((rc = cascade_request_check_string(field, e->value, CASCADE_REQUEST_EXP_VALUE_MAX, err,
                                               errlen)))
            return rc;
    }
    return 0;
}

int cascade_request_check_experiments(const Cascade__V1__ExperimentContext *exp, char *err,
                                      size_t errlen)
{
    if (!exp)
        return 0;
    if (exp->bucket_count > CASCADE_REQUEST_EXP_BUCKETS_MAX) {
        snprintf(err, errlen, "experiments.bucket_count %u out of range 0..%d", exp->bucket_count,
                 CASCADE_REQUEST_EXP_BUCKETS_MAX);
        return CASCADE_EINVAL;
    }
    if (exp->n_layers > CASCADE_REQUEST_EXP_LAYERS_MAX) {
        snprintf(err, errlen, "experiments.layers: %zu entries, at most %d", exp->n_layers,
                 CASCADE_REQUEST_EXP_LAYERS_MAX);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < exp->n_layers; i++) {
        int rc = check_layer(exp->layers[i], i, exp->bucket_count, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

float cascade_request_candidate_score(const Cascade__V1__Candidate *c, enum cascade_score_kind by)
{
    switch (by) {
    case CASCADE_SCORE_RERANK:
        return c->rerank_score;
    case CASCADE_SCORE_RANK:
        return c->rank_score;
    case CASCADE_SCORE_PRERANK:
        return c->prerank_score;
    case CASCADE_SCORE_RECALL:
    default:
        return c->recall_score;
    }
}

struct sort_key {
    float score;
    uint64_t id;
    size_t pos;
    Cascade__V1__Candidate *cand;
};

static int sort_key_cmp(const void *pa, const void *pb)
{
    const struct sort_key *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* The sort keys of c[0..n) in the arena; NULL when out of memory. */
static struct sort_key *sort_keys(Cascade__V1__Candidate **c, size_t n, enum cascade_score_kind by,
                                  cascade_arena *arena)
{
    struct sort_key *k = cascade_arena_calloc(arena, n + 1, sizeof *k);
    for (size_t i = 0; k && i < n; i++) {
        float s = cascade_request_candidate_score(c[i], by);
        /* NaN compares unequal to everything; rank it below every number so
         * the comparison stays a total order. */
        k[i] = (struct sort_key){isnan(s) ? -INFINITY : s, c[i]->item_id, i, c[i]};
    }
    return k;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Sort k[0..n) by sort_key_cmp: insertion sort of runs of SORT_RUN keys, then
 * bottom-up merges between k and tmp (room for n keys). The comparison is
 * inlined and a key moves as one 32-byte copy, where qsort calls it through a
 * pointer and moves the keys bytewise: the orchestrator's merge sorts ~1,500
 * candidates per request with it. The keys are distinct (pos), so any correct
 * sort gives this one order. */
static void sort_key_sort(struct sort_key *k, struct sort_key *tmp, size_t n)
{
    enum { SORT_RUN = 16 };
    for (size_t lo = 0; lo < n; lo += SORT_RUN) {
        size_t hi = min_size(lo + SORT_RUN, n);
        for (size_t i = lo + 1; i < hi; i++) {
            struct sort_key x = k[i];
            size_t j = i;
            for (; j > lo && sort_key_cmp(&x, &k[j - 1]) < 0; j--)
                k[j] = k[j - 1];
            k[j] = x;
        }
    }
    struct sort_key *src = k, *dst = tmp;
    for (size_t width = SORT_RUN; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = min_size(lo + width, n), hi = min_size(lo + 2 * width, n);
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                dst[o++] = sort_key_cmp(&src[b], &src[a]) < 0 ? src[b++] : src[a++];
            while (a < mid)
                dst[o++] = src[a++];
            while (b < hi)
                dst[o++] = src[b++];
        }
        struct sort_key *t = src;
        src = dst;
        dst = t;
    }
    if (src != k)
        memcpy(k, src, n * sizeof *k);
}

/* Sort k[0..n) with scratch from arena; CASCADE_ENOMEM leaves k as it was. */
static int sort_keys_in_order(struct sort_key *k, size_t n, cascade_arena *arena)
{
    struct sort_key *tmp = n > 1 ? cascade_arena_alloc(arena, n * sizeof *tmp) : NULL;
    if (n > 1 && !tmp)
        return CASCADE_ENOMEM;
    sort_key_sort(k, tmp, n);
    return 0;
}

int cascade_request_sort_candidates(Cascade__V1__Candidate **c, size_t n,
                                    enum cascade_score_kind by, cascade_arena *arena)
{
    struct sort_key *k = sort_keys(c, n, by, arena);
    if (!k || sort_keys_in_order(k, n, arena))
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        c[i] = k[i].cand;
    return 0;
}

static void sort_key_swap(struct sort_key *a, struct sort_key *b)
{
    struct sort_key t = *a;
    *a = *b;
    *b = t;
}

/* Reorder k[0..n) so that k[0..top) hold the top smallest under
 * sort_key_cmp (in any order) and the rest follow: quickselect with a
 * median-of-three pivot. The keys are distinct (pos), so a partition
 * always makes progress. */
static void sort_key_select(struct sort_key *k, size_t n, size_t top)
{
    size_t lo = 0, hi = n; /* the boundary top lies in [lo, hi) */
    while (hi - lo > 1 && top > lo && top < hi) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (sort_key_cmp(&k[mid], &k[lo]) < 0)
            sort_key_swap(&k[mid], &k[lo]);
        if (sort_key_cmp(&k[last], &k[lo]) < 0)
            sort_key_swap(&k[last], &k[lo]);
        if (sort_key_cmp(&k[last], &k[mid]) < 0)
            sort_key_swap(&k[last], &k[mid]);
        sort_key_swap(&k[mid], &k[last]); /* the median as pivot, at the end */
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (sort_key_cmp(&k[i], &k[last]) < 0)
                sort_key_swap(&k[i], &k[store++]);
        sort_key_swap(&k[store], &k[last]); /* k[lo..store) < pivot = k[store] < the rest */
        if (store == top || store + 1 == top)
            return;
        if (store > top)
            hi = store;
        else
            lo = store + 1;
    }
}

int cascade_request_sort_top(Cascade__V1__Candidate **c, size_t n, size_t top,
                             enum cascade_score_kind by, cascade_arena *arena)
{
    if (top >= n)
        return cascade_request_sort_candidates(c, n, by, arena);
    struct sort_key *k = sort_keys(c, n, by, arena);
    if (!k)
        return CASCADE_ENOMEM;
    sort_key_select(k, n, top);
    if (sort_keys_in_order(k, top, arena))
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        c[i] = k[i].cand;
    return 0;
}
