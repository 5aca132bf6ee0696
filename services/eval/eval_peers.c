/* Popularity, ItemKNN and EASE peers (eval_peers.h): each builds what it
 * needs from the binary train matrix, then lists K items per test user
 * (train items removed) into its row's accumulator. */
#include "eval_peers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ease.h"
#include "error.h"

const char *const cascade_eval_peer_names[CASCADE_EVAL_N_PEERS] = {"popularity", "itemknn", "ease"};

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

int cascade_eval_matrix_build(const cascade_dataset *train,
                              const struct cascade_behaviour_weights *w,
                              struct cascade_eval_matrix *m)
{
    struct cascade_user_events ue = {0};
    memset(m, 0, sizeof *m);
    m->n_users = train->n_users;
    m->n_items = train->n_items;
    m->off = calloc(train->n_users + 1, sizeof *m->off);
    m->count = calloc(train->n_items ? train->n_items : 1, sizeof *m->count);
    if (!m->off || !m->count || cascade_user_events_build(train, &ue) != 0)
        goto nomem;
    size_t n = 0;
    for (size_t e = 0; e < train->n_events; e++)
        n += train->events[e].type <= CASCADE_EV_MAX && w->w[train->events[e].type] > 0;
    if (!(m->item = malloc((n ? n : 1) * sizeof *m->item)))
        goto nomem;
    n = 0;
    for (size_t u = 0; u < train->n_users; u++) {
        size_t start = n;
        for (size_t j = ue.off[u]; j < ue.off[u + 1]; j++) {
            const struct cascade_ds_event *e = &train->events[ue.idx[j]];
            if (e->type <= CASCADE_EV_MAX && w->w[e->type] > 0)
                m->item[n++] = e->item;
        }
        qsort(m->item + start, n - start, sizeof *m->item, cmp_u32);
        size_t d = start;
        for (size_t i = start; i < n; i++)
            if (d == start || m->item[d - 1] != m->item[i])
                m->item[d++] = m->item[i];
        n = d;
        m->off[u + 1] = n;
        for (size_t i = start; i < n; i++)
            m->count[m->item[i]]++;
    }
    cascade_user_events_free(&ue);
    return 0;
nomem:
    cascade_user_events_free(&ue);
    cascade_eval_matrix_free(m);
    return CASCADE_ENOMEM;
}

void cascade_eval_matrix_free(struct cascade_eval_matrix *m)
{
    free(m->off);
    free(m->item);
    free(m->count);
    memset(m, 0, sizeof *m);
}

void cascade_eval_peers_defaults(struct cascade_eval_peers_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->ease_lambda = 250;
    o->ease_max_items = 0; /* common/ml/ease.h's default */
}

static bool in_sorted(const uint32_t *v, size_t n, uint32_t x)
{
    return bsearch(&x, v, n, sizeof *v, cmp_u32) != NULL;
}

size_t cascade_eval_top_unseen(const float *scores, size_t n_items, const uint32_t *seen,
                               size_t n_seen, float floor, size_t k, uint32_t *out,
                               struct cascade_scored *scratch)
{
    size_t n = 0;
    for (size_t i = 0; i < n_items; i++)
        if (scores[i] > floor && !in_sorted(seen, n_seen, (uint32_t)i))
            scratch[n++] = (struct cascade_scored){scores[i], i, (uint32_t)i};
    size_t got = cascade_topk_select(scratch, n, k);
    for (size_t i = 0; i < got; i++)
        out[i] = scratch[i].idx;
    return got;
}

/* The test user k's held-out and train items. */
#define REL(s, k) ((s)->test + (s)->test_off[k]), ((s)->test_off[(k) + 1] - (s)->test_off[k])
#define SEEN(s, k) ((s)->seen + (s)->seen_off[k]), ((s)->seen_off[(k) + 1] - (s)->seen_off[k])

/* Scratch of one peer's loop. */
struct peer_scratch {
    float *scores;
    uint32_t *list;
    struct cascade_scored *sc;
};

static int scratch_init(struct peer_scratch *s, size_t n_items, size_t k)
{
    s->scores = calloc(n_items ? n_items : 1, sizeof *s->scores);
    s->list = malloc((k ? k : 1) * sizeof *s->list);
    s->sc = malloc((n_items ? n_items : 1) * sizeof *s->sc);
    return s->scores && s->list && s->sc ? 0 : CASCADE_ENOMEM;
}

static void scratch_free(struct peer_scratch *s)
{
    free(s->scores);
    free(s->list);
    free(s->sc);
}

static int run_popularity(const struct cascade_eval_split *sp, const struct cascade_eval_matrix *m,
                          size_t k, struct cascade_eval_list_acc *acc)
{
    struct peer_scratch s;
    int rc = scratch_init(&s, m->n_items, k);
    for (size_t i = 0; rc == 0 && i < m->n_items; i++)
        s.scores[i] = (float)m->count[i];
    for (size_t u = 0; rc == 0 && u < sp->n_users; u++) {
        size_t n =
            cascade_eval_top_unseen(s.scores, m->n_items, SEEN(sp, u), 0.0f, k, s.list, s.sc);
        cascade_eval_list_acc_add(acc, s.list, n, REL(sp, u));
    }
    scratch_free(&s);
    return rc;
}

/* Items → users of the matrix (transposed CSR). */
static int transpose(const struct cascade_eval_matrix *m, size_t **off_out, uint32_t **user_out)
{
    size_t *off = calloc(m->n_items + 1, sizeof *off);
    uint32_t *user = malloc((m->off[m->n_users] ? m->off[m->n_users] : 1) * sizeof *user);
    size_t *fill = calloc(m->n_items ? m->n_items : 1, sizeof *fill);
    if (!off || !user || !fill) {
        free(off);
        free(user);
        free(fill);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < m->n_items; i++)
        off[i + 1] = off[i] + m->count[i];
    for (size_t u = 0; u < m->n_users; u++)
        for (size_t j = m->off[u]; j < m->off[u + 1]; j++)
            user[off[m->item[j]] + fill[m->item[j]]++] = (uint32_t)u;
    free(fill);
    *off_out = off;
    *user_out = user;
    return 0;
}

/* ItemKNN: score(i) = Σ_{j ∈ history} cos(i, j), cos(i, j) = |U_i ∩ U_j| /
 * sqrt(|U_i| |U_j|) on the binary train matrix, over every co-occurring item
 * (no neighbourhood cut), accumulated user by user of U_j. */
static int run_itemknn(const struct cascade_eval_split *sp, const struct cascade_eval_matrix *m,
                       size_t k, struct cascade_eval_list_acc *acc)
{
    struct peer_scratch s;
    size_t *ioff = NULL;
    uint32_t *iuser = NULL;
    float *inv_sqrt = malloc((m->n_items ? m->n_items : 1) * sizeof *inv_sqrt);
    int rc = scratch_init(&s, m->n_items, k);
    if (rc == 0 && !inv_sqrt)
        rc = CASCADE_ENOMEM;
    if (rc == 0)
        rc = transpose(m, &ioff, &iuser);
    for (size_t i = 0; rc == 0 && i < m->n_items; i++)
        inv_sqrt[i] = m->count[i] ? 1.0f / sqrtf((float)m->count[i]) : 0.0f;
    for (size_t t = 0; rc == 0 && t < sp->n_users; t++) {
        uint32_t u = sp->users[t];
        memset(s.scores, 0, m->n_items * sizeof *s.scores);
        for (size_t h = m->off[u]; h < m->off[u + 1]; h++) {
            uint32_t j = m->item[h];
            for (size_t x = ioff[j]; x < ioff[j + 1]; x++) {
                uint32_t v = iuser[x];
                for (size_t y = m->off[v]; y < m->off[v + 1]; y++)
                    s.scores[m->item[y]] += inv_sqrt[j];
            }
        }
        for (size_t i = 0; i < m->n_items; i++)
            s.scores[i] *= inv_sqrt[i];
        size_t n =
            cascade_eval_top_unseen(s.scores, m->n_items, SEEN(sp, t), 0.0f, k, s.list, s.sc);
        cascade_eval_list_acc_add(acc, s.list, n, REL(sp, t));
    }
    free(inv_sqrt);
    free(ioff);
    free(iuser);
    scratch_free(&s);
    return rc;
}

#ifdef CASCADE_HAVE_EASE
static void ease_phase(void *ud, const char *phase)
{
    if (!*(const bool *)ud)
        fprintf(stderr, "peers: ease %s\n", phase);
}

/* EASE on the binary train matrix; a failed solve leaves the row unbuilt. */
static int run_ease(const struct cascade_eval_split *sp, const struct cascade_eval_matrix *m,
                    const struct cascade_eval_peers_opts *o, struct cascade_eval_peers *p)
{
    struct cascade_ease_input in = {m->n_users, m->n_items, m->off, m->item};
    struct cascade_ease_opts eo;
    struct peer_scratch s;
    char err[256] = "";
    bool quiet = o->quiet;
    cascade_ease_opts_default(&eo);
    eo.lambda = o->ease_lambda;
    if (o->ease_max_items > 0)
        eo.max_items = o->ease_max_items;
    eo.on_phase = ease_phase;
    eo.ud = &quiet;
    cascade_ease *model = cascade_ease_build(&in, &eo, err, sizeof err);
    if (!model) {
        snprintf(p->note[CASCADE_EVAL_PEER_EASE], sizeof p->note[0], "not built: %.200s", err);
        return 0;
    }
    int rc = scratch_init(&s, m->n_items, o->k);
    for (size_t t = 0; rc == 0 && t < sp->n_users; t++) {
        uint32_t u = sp->users[t];
        if ((rc = cascade_ease_score(model, m->item + m->off[u], m->off[u + 1] - m->off[u],
                                     s.scores)) != 0)
            break;
        /* EASE scores may be negative: every covered item competes. */
        size_t n = cascade_eval_top_unseen(s.scores, m->n_items, SEEN(sp, t), -INFINITY, o->k,
                                           s.list, s.sc);
        cascade_eval_list_acc_add(&p->acc[CASCADE_EVAL_PEER_EASE], s.list, n, REL(sp, t));
    }
    snprintf(p->note[CASCADE_EVAL_PEER_EASE], sizeof p->note[0], "lambda=%g, %zu items covered",
             o->ease_lambda, cascade_ease_n_covered(model));
    p->built[CASCADE_EVAL_PEER_EASE] = rc == 0;
    scratch_free(&s);
    cascade_ease_destroy(model);
    return rc;
}
#else
static int run_ease(const struct cascade_eval_split *sp, const struct cascade_eval_matrix *m,
                    const struct cascade_eval_peers_opts *o, struct cascade_eval_peers *p)
{
    (void)sp;
    (void)m;
    (void)o;
    snprintf(p->note[CASCADE_EVAL_PEER_EASE], sizeof p->note[0],
             "not built: this build has no common/ml/ease.c (branch h-ease)");
    return 0;
}
#endif

int cascade_eval_peers_run(const struct cascade_eval_split *split,
                           const struct cascade_eval_matrix *m, const double *pct,
                           const struct cascade_eval_peers_opts *o, struct cascade_eval_peers *p,
                           char *err, size_t errlen)
{
    int rc = 0;
    memset(p, 0, sizeof *p);
    for (int i = 0; i < CASCADE_EVAL_N_PEERS && rc == 0; i++)
        rc = cascade_eval_list_acc_init(&p->acc[i], o->k, m->n_items, pct);
    for (int i = 0; i < CASCADE_EVAL_N_PEERS && rc == 0; i++) {
        int64_t t0 = cascade_now_ms();
        if (i == CASCADE_EVAL_PEER_POPULARITY)
            rc = run_popularity(split, m, o->k, &p->acc[i]);
        else if (i == CASCADE_EVAL_PEER_ITEMKNN)
            rc = run_itemknn(split, m, o->k, &p->acc[i]);
        else
            rc = run_ease(split, m, o, p);
        if (i != CASCADE_EVAL_PEER_EASE) {
            p->built[i] = rc == 0;
            snprintf(p->note[i], sizeof p->note[i], "%s",
                     i == CASCADE_EVAL_PEER_POPULARITY
                         ? "train interaction counts"
                         : "cosine on the binary train matrix, every co-occurring item");
        }
        p->seconds[i] = (double)(cascade_now_ms() - t0) / 1000.0;
        if (!o->quiet && rc == 0)
            fprintf(stderr, "peers: %s %s in %.1fs\n", cascade_eval_peer_names[i],
                    p->built[i] ? "scored" : p->note[i], p->seconds[i]);
    }
    if (rc != 0)
        snprintf(err, errlen, "peers: out of memory (%zu items)", m->n_items);
    return rc;
}

void cascade_eval_peers_free(struct cascade_eval_peers *p)
{
    for (int i = 0; i < CASCADE_EVAL_N_PEERS; i++)
        cascade_eval_list_acc_free(&p->acc[i]);
}
