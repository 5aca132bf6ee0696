/* The authors family. Authors get dense indices; each user's interest list
 * (interests.h) is folded into per-author weights — decayed for the user's
 * interacted-authors list, undecayed (capped to the strongest authors) for
 * the author-level ItemCF, which then runs like itemcf.c with a sparse
 * accumulator over author -> users -> authors. Single-threaded: authors are
 * few next to items, so the similarity pass is small next to the writes. */
#include "authors.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cascade/v1/records.pb.h"
#include "clock.h"
#include "error.h"
#include "family.h"
#include "interests.h"
#include "progress.h"
#include "store.h"
#include "topk.h"
#include "timescale.h"

#define DAY_S 86400.0
#define MAX_K 200 /* NeighbourList bound in records.options */
#define NO_AUTHOR UINT32_MAX

void cascade_authors_defaults(struct cascade_authors_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ns = "cascade";
    cascade_behaviour_weights_default(&o->weights);
    o->items_cap = 200;
    o->interacted_top_k = 50;
    o->half_life_days = CASCADE_TIMESCALE_AUTO;
    o->similar_top_k = 50;
    o->max_authors_per_user = 100;
    o->pipeline = 2000;
}

int cascade_authors_config(const cascade_config *c, struct cascade_authors_opts *o, char *err,
                           size_t errlen)
{
    int rc;
    if ((rc = cascade_config_size(c, "build.authors.items_cap", &o->items_cap, 1, 1000000, err,
                                  errlen)) ||
        (rc = cascade_config_size(c, "build.authors.interacted_top_k", &o->interacted_top_k, 1,
                                  MAX_K, err, errlen)) ||
        (rc = cascade_config_double(c, "build.authors.half_life_days", o->half_life_days, 0, 3650,
                                    &o->half_life_days, err, errlen)) ||
        (rc = cascade_config_size(c, "build.authors.similar_top_k", &o->similar_top_k, 1, MAX_K,
                                  err, errlen)) ||
        (rc = cascade_config_size(c, "build.authors.max_authors_per_user", &o->max_authors_per_user,
                                  0, 1000000, err, errlen)))
        return rc;
    return 0;
}

/* Dense author indices and the sparse user x author interest matrix. */
struct author_state {
    const cascade_dataset *ds;
    const struct cascade_authors_opts *o;
    int64_t as_of;
    double half_life_s; /* resolved (timescale.h) */
    uint64_t *aid;      /* n_authors sorted author ids */
    size_t n_authors;
    uint32_t *item_author; /* n_items: author index or NO_AUTHOR */
    /* user -> (author, undecayed weight), CSR over users */
    size_t *uoff;
    uint32_t *ua;
    float *uw;
    size_t un, ucap;
    /* author -> (user, weight), CSR over authors, and vector norms */
    size_t *aoff;
    uint32_t *au;
    float *aw;
    double *norm;
    /* scratch over authors */
    double *acc, *acc_decayed;
    uint32_t *touched;
    struct cascade_scored *cand;
    struct cascade_family_writer w;
    struct cascade_authors_summary *sum;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint32_t author_index(const struct author_state *st, uint64_t id)
{
    const uint64_t *p = bsearch(&id, st->aid, st->n_authors, sizeof(uint64_t), cmp_u64);
    return p ? (uint32_t)(p - st->aid) : NO_AUTHOR;
}

static int index_authors(struct author_state *st)
{
    const cascade_dataset *ds = st->ds;
    st->aid = malloc((ds->n_items + 1) * sizeof(uint64_t));
    st->item_author = malloc((ds->n_items + 1) * sizeof(uint32_t));
    if (!st->aid || !st->item_author)
        return CASCADE_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].author_id)
            st->aid[n++] = ds->items[i].author_id;
    qsort(st->aid, n, sizeof(uint64_t), cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || st->aid[i] != st->aid[u - 1])
            st->aid[u++] = st->aid[i];
    st->n_authors = u;
    for (size_t i = 0; i < ds->n_items; i++)
        st->item_author[i] =
            ds->items[i].author_id ? author_index(st, ds->items[i].author_id) : NO_AUTHOR;
    size_t na = st->n_authors + 1;
    st->acc = calloc(na, sizeof(double));
    st->acc_decayed = calloc(na, sizeof(double));
    st->touched = malloc(na * sizeof(uint32_t));
    st->cand = malloc(na * sizeof(*st->cand));
    st->aoff = calloc(na, sizeof(size_t));
    st->norm = calloc(na, sizeof(double));
    st->uoff = calloc(ds->n_users + 1, sizeof(size_t));
    if (!st->acc || !st->acc_decayed || !st->touched || !st->cand || !st->aoff || !st->norm ||
        !st->uoff)
        return CASCADE_ENOMEM;
    st->sum->authors = st->n_authors;
    return 0;
}

/* items:{aid}: each author's items published by as_of, newest first. */
static int write_author_items(struct author_state *st)
{
    const cascade_dataset *ds = st->ds;
    struct cascade_grouped_item *v = malloc((ds->n_items + 1) * sizeof(*v));
    size_t n = 0;
    if (!v)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < ds->n_items; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        if (it->author_id && it->created_at <= st->as_of)
            v[n++] = (struct cascade_grouped_item){
                .group = it->author_id, .created_at = it->created_at, .id = it->id};
    }
    int rc = cascade_family_write_grouped(&st->w, "items:", v, n, st->o->items_cap,
                                          &st->sum->item_lists, &st->sum->items);
    free(v);
    return rc;
}

/* Append (author, weight) to the user -> authors matrix. */
static int push_user_author(struct author_state *st, uint32_t a, float w)
{
    if (st->un == st->ucap) {
        size_t cap = st->ucap ? st->ucap * 2 : 4096;
        uint32_t *ua = realloc(st->ua, cap * sizeof(uint32_t));
        if (!ua)
            return CASCADE_ENOMEM;
        st->ua = ua;
        float *uw = realloc(st->uw, cap * sizeof(float));
        if (!uw)
            return CASCADE_ENOMEM;
        st->uw = uw;
        st->ucap = cap;
    }
    st->ua[st->un] = a;
    st->uw[st->un++] = w;
    return 0;
}

/* SET {suffix} to the NeighbourList of the first n candidates (ids are author ids). */
static int write_neighbours(struct author_state *st, const char *suffix, size_t n)
{
    cascade_v1_NeighbourList list;
    uint8_t buf[cascade_v1_NeighbourList_size];
    size_t len = 0;
    memset(&list, 0, sizeof(list));
    list.neighbours_count = (pb_size_t)n;
    for (size_t t = 0; t < n; t++) {
        list.neighbours[t].item_id = st->cand[t].id;
        list.neighbours[t].score = (float)st->cand[t].score;
    }
    int rc = cascade_record_encode(cascade_v1_NeighbourList_fields, &list, buf, sizeof(buf), &len);
    return rc ? rc : cascade_family_set(&st->w, suffix, buf, len);
}

/* One user: fold the interest list into per-author weights, write the
 * interacted-authors list and keep the strongest authors for similarity. */
static int one_user(struct author_state *st, const struct cascade_ui *ui, size_t u)
{
    double hl = st->half_life_s;
    size_t nt = 0, n;
    char suffix[CASCADE_KEY_MAX];
    int rc = 0;
    for (size_t k = ui->off[u]; k < ui->off[u + 1]; k++) {
        const struct cascade_ui_entry *e = &ui->e[k];
        uint32_t a = st->item_author[e->item];
        if (a == NO_AUTHOR)
            continue;
        if (st->acc[a] == 0)
            st->touched[nt++] = a;
        st->acc[a] += e->weight;
        st->acc_decayed[a] += e->weight * cascade_decay(st->as_of - e->last_ts, hl);
    }
    for (size_t t = 0; t < nt; t++) {
        uint32_t a = st->touched[t];
        st->cand[t] = (struct cascade_scored){st->acc_decayed[a], st->aid[a], a};
    }
    n = cascade_topk_select(st->cand, nt, st->o->interacted_top_k);
    if (n > 0) {
        snprintf(suffix, sizeof(suffix), "interacted:%s", st->ds->users[u].id);
        rc = write_neighbours(st, suffix, n);
        st->sum->interacted_lists++;
    }
    /* The similarity input: the user's strongest authors by undecayed weight. */
    for (size_t t = 0; t < nt; t++) {
        uint32_t a = st->touched[t];
        st->cand[t] = (struct cascade_scored){st->acc[a], st->aid[a], a};
        st->acc[a] = st->acc_decayed[a] = 0;
    }
    size_t cap = st->o->max_authors_per_user ? st->o->max_authors_per_user : nt;
    n = cascade_topk_select(st->cand, nt, cap);
    for (size_t t = 0; t < n && rc == 0; t++)
        rc = push_user_author(st, st->cand[t].idx, (float)st->cand[t].score);
    st->uoff[u + 1] = st->un;
    return rc;
}

static int interacted_pass(struct author_state *st)
{
    struct cascade_ui ui;
    struct cascade_progress prog;
    int rc = cascade_ui_build(st->ds, &st->o->weights, 0, &ui);
    if (rc != 0)
        return rc;
    cascade_progress_start(&prog, "authors", "users", st->ds->n_users, st->o->quiet);
    for (size_t u = 0; u < st->ds->n_users && rc == 0; u++) {
        rc = one_user(st, &ui, u);
        if ((u & 4095) == 0)
            cascade_progress_update(&prog, u);
    }
    cascade_progress_finish(&prog, st->ds->n_users);
    cascade_ui_free(&ui);
    return rc;
}

/* Transpose user -> authors into author -> users, with the vector norms. */
static int transpose(struct author_state *st)
{
    size_t na = st->n_authors, n_users = st->ds->n_users;
    size_t *fill = malloc((na + 1) * sizeof(size_t));
    st->au = malloc((st->un + 1) * sizeof(uint32_t));
    st->aw = malloc((st->un + 1) * sizeof(float));
    if (!fill || !st->au || !st->aw) {
        free(fill);
        return CASCADE_ENOMEM;
    }
    for (size_t k = 0; k < st->un; k++)
        st->aoff[st->ua[k] + 1]++;
    for (size_t a = 0; a < na; a++)
        st->aoff[a + 1] += st->aoff[a];
    memcpy(fill, st->aoff, (na + 1) * sizeof(size_t));
    for (size_t u = 0; u < n_users; u++) {
        for (size_t k = st->uoff[u]; k < st->uoff[u + 1]; k++) {
            uint32_t a = st->ua[k];
            st->au[fill[a]] = (uint32_t)u;
            st->aw[fill[a]++] = st->uw[k];
            st->norm[a] += (double)st->uw[k] * st->uw[k];
        }
    }
    for (size_t a = 0; a < na; a++)
        st->norm[a] = sqrt(st->norm[a]);
    free(fill);
    return 0;
}

/* sim(a, b) = Σ_u w_ua·w_ub / (‖w_a‖·‖w_b‖) over the users of a, top k. */
static int one_author(struct author_state *st, uint32_t a)
{
    char suffix[64];
    size_t nt = 0;
    for (size_t k = st->aoff[a]; k < st->aoff[a + 1]; k++) {
        uint32_t u = st->au[k];
        double wa = st->aw[k];
        for (size_t j = st->uoff[u]; j < st->uoff[u + 1]; j++) {
            uint32_t b = st->ua[j];
            if (b == a)
                continue;
            if (st->acc[b] == 0)
                st->touched[nt++] = b;
            st->acc[b] += wa * st->uw[j];
        }
    }
    for (size_t t = 0; t < nt; t++) {
        uint32_t b = st->touched[t];
        st->cand[t] =
            (struct cascade_scored){st->acc[b] / (st->norm[a] * st->norm[b]), st->aid[b], b};
        st->acc[b] = 0;
    }
    st->sum->pairs += nt;
    size_t n = cascade_topk_select(st->cand, nt, st->o->similar_top_k);
    if (n == 0)
        return 0;
    st->sum->similar_lists++;
    snprintf(suffix, sizeof(suffix), "similar:%" PRIu64, st->aid[a]);
    return write_neighbours(st, suffix, n);
}

static int similar_pass(struct author_state *st)
{
    struct cascade_progress prog;
    int rc = transpose(st);
    cascade_progress_start(&prog, "authors", "similar-author lists", st->n_authors, st->o->quiet);
    for (uint32_t a = 0; a < st->n_authors && rc == 0; a++) {
        rc = one_author(st, a);
        if ((a & 1023) == 0)
            cascade_progress_update(&prog, a);
    }
    cascade_progress_finish(&prog, st->n_authors);
    return rc;
}

static void free_state(struct author_state *st)
{
    free(st->aid);
    free(st->item_author);
    free(st->uoff);
    free(st->ua);
    free(st->uw);
    free(st->aoff);
    free(st->au);
    free(st->aw);
    free(st->norm);
    free(st->acc);
    free(st->acc_decayed);
    free(st->touched);
    free(st->cand);
}

static int check_opts(const struct cascade_authors_opts *o, char *err, size_t errlen)
{
    if (o->interacted_top_k < 1 || o->interacted_top_k > MAX_K || o->similar_top_k < 1 ||
        o->similar_top_k > MAX_K) {
        snprintf(err, errlen, "authors: interacted and similar top-k must be in [1, %d]", MAX_K);
        return CASCADE_EINVAL;
    }
    if (o->items_cap < 1) {
        snprintf(err, errlen, "authors: items cap must be at least 1");
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_authors_run(const cascade_dataset *ds, cascade_redis *r,
                        const struct cascade_authors_opts *o, struct cascade_authors_summary *sum,
                        char *err, size_t errlen)
{
    struct cascade_authors_summary local;
    struct author_state st = {.ds = ds, .o = o};
    int64_t t0_us;
    const char *phase = "indexing authors";
    int rc;
    t0_us = cascade_now_us();
    st.sum = sum ? sum : &local;
    memset(st.sum, 0, sizeof(*st.sum));
    st.as_of = st.sum->as_of = o->as_of ? o->as_of : cascade_dataset_last_ts(ds);
    st.sum->half_life_days = cascade_timescale_days(
        o->half_life_days, CASCADE_TIMESCALE_AUTHOR_SHARE, cascade_timescale_span_days(ds));
    st.half_life_s = st.sum->half_life_days * DAY_S;
    if ((rc = check_opts(o, err, errlen)) != 0)
        return rc;
    if ((rc = index_authors(&st)) != 0)
        goto out;
    if ((rc = cascade_family_begin(&st.w, r, o->ns, "authors", o->pipeline, err, errlen)) != 0)
        goto out_quiet;
    if ((phase = "writing author item lists", rc = write_author_items(&st)) ||
        (phase = "writing interacted-author lists", rc = interacted_pass(&st)) ||
        (phase = "computing similar authors", rc = similar_pass(&st)))
        goto out;
    if ((rc = cascade_family_publish(&st.w, err, errlen)) == 0)
        st.sum->gen = st.w.gen;
    goto out_quiet;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "authors: out of memory while %s (%zu users, %zu authors)", phase,
                 ds->n_users, st.n_authors);
    else if (rc == CASCADE_ETOOBIG)
        snprintf(err, errlen, "authors: a neighbour list does not encode while %s", phase);
    else if (rc != 0)
        cascade_family_error(&st.w, phase, err, errlen);
out_quiet:
    st.sum->commands = st.w.pl.total;
    st.sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    free_state(&st);
    return rc;
}
