/* ItemCF neighbour lists: cosine similarity over behaviour-weighted user
 * vectors, computed item by item with a sparse accumulator (cost Σ_u |I_u|²,
 * memory O(items) per thread), spread over pthreads, top-k kept per item. */
#include "itemcf.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "interests.h"
#include "pipeline.h"
#include "progress.h"
#include "store.h"

#define ITEMS_PER_GRAB 32
#define MAX_THREADS 64
#define MAX_K 200 /* NeighbourList bound in records.options */

void cascade_itemcf_defaults(struct cascade_itemcf_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_items_per_user = 200;
    o->top_k = 100;
    o->threads = 2;
    cascade_behaviour_weights_default(&o->weights);
}

/* The item -> users side of the interest matrix (CSR), with vector norms. */
struct item_users {
    size_t *off;
    uint32_t *user;
    float *w;
    double *norm;
};

struct job {
    const struct cascade_ui *ui;
    const struct item_users *iu;
    const cascade_dataset *ds;
    struct cascade_itemcf_result *res;
    atomic_size_t next;
    atomic_size_t done;
    atomic_size_t pairs;
    bool quiet;
    atomic_int failed;
};

struct cand {
    float score;
    uint32_t item;
    uint64_t id; /* for tie-breaking by item id */
};

/* "a ranks below b": lower score, or equal score and larger id. */
static bool worse(const struct cand *a, const struct cand *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

/* Min-heap on worse(): the root is the weakest kept candidate. */
static void heap_push(struct cand *h, size_t *n, size_t k, struct cand c)
{
    if (*n == k) {
        if (!worse(&h[0], &c))
            return;
        h[0] = c; /* replace the root and sift down */
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < *n && worse(&h[l], &h[m]))
                m = l;
            if (r < *n && worse(&h[r], &h[m]))
                m = r;
            if (m == i)
                break;
            struct cand t = h[i];
            h[i] = h[m];
            h[m] = t;
            i = m;
        }
        return;
    }
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0 && worse(&h[i], &h[(i - 1) / 2])) {
        struct cand t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int cmp_best_first(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (worse(x, y))
        return 1;
    if (worse(y, x))
        return -1;
    return 0;
}

struct scratch {
    float *acc;        /* n_items, zero between items */
    uint32_t *touched; /* items with a nonzero acc */
    struct cand *heap;
};

/* Neighbours of one item: accumulate Σ_u w_ui·w_uj over the users of i and
 * their items j, then normalise and keep the top k. */
static size_t one_item(struct job *jb, struct scratch *s, size_t i)
{
    const struct cascade_ui *ui = jb->ui;
    const struct item_users *iu = jb->iu;
    size_t nt = 0, nh = 0, k = jb->res->k;
    for (size_t a = iu->off[i]; a < iu->off[i + 1]; a++) {
        uint32_t u = iu->user[a];
        float wi = iu->w[a];
        for (size_t b = ui->off[u]; b < ui->off[u + 1]; b++) {
            uint32_t j = ui->e[b].item;
            if (j == i)
                continue;
            if (s->acc[j] == 0.0f)
                s->touched[nt++] = j;
            s->acc[j] += wi * ui->e[b].weight;
        }
    }
    for (size_t t = 0; t < nt; t++) {
        uint32_t j = s->touched[t];
        float sim = (float)(s->acc[j] / (iu->norm[i] * iu->norm[j]));
        s->acc[j] = 0.0f;
        heap_push(s->heap, &nh, k, (struct cand){sim, j, jb->ds->items[j].id});
    }
    qsort(s->heap, nh, sizeof(*s->heap), cmp_best_first);
    for (size_t t = 0; t < nh; t++) {
        jb->res->nbr[i * k + t] = s->heap[t].item;
        jb->res->score[i * k + t] = s->heap[t].score;
    }
    jb->res->count[i] = (uint32_t)nh;
    return nt;
}

static void *worker(void *arg)
{
    struct job *jb = arg;
    size_t n = jb->res->n_items;
    struct scratch s = {
        .acc = calloc(n + 1, sizeof(float)),
        .touched = malloc((n + 1) * sizeof(uint32_t)),
        .heap = malloc((jb->res->k + 1) * sizeof(struct cand)),
    };
    if (!s.acc || !s.touched || !s.heap) {
        atomic_store(&jb->failed, CASCADE_ENOMEM);
        goto out;
    }
    for (;;) {
        size_t start = atomic_fetch_add(&jb->next, ITEMS_PER_GRAB);
        if (start >= n)
            break;
        size_t end = start + ITEMS_PER_GRAB < n ? start + ITEMS_PER_GRAB : n, pairs = 0;
        for (size_t i = start; i < end; i++)
            pairs += one_item(jb, &s, i);
        atomic_fetch_add(&jb->pairs, pairs);
        atomic_fetch_add(&jb->done, end - start);
    }
out:
    free(s.acc);
    free(s.touched);
    free(s.heap);
    return NULL;
}

static int build_item_users(const cascade_dataset *ds, const struct cascade_ui *ui,
                            struct item_users *iu)
{
    size_t n = ds->n_items, total = ui->off[ui->n_users];
    iu->off = calloc(n + 1, sizeof(size_t));
    iu->user = malloc((total + 1) * sizeof(uint32_t));
    iu->w = malloc((total + 1) * sizeof(float));
    iu->norm = calloc(n + 1, sizeof(double));
    size_t *fill = malloc((n + 1) * sizeof(size_t));
    if (!iu->off || !iu->user || !iu->w || !iu->norm || !fill) {
        free(fill);
        return CASCADE_ENOMEM;
    }
    for (size_t a = 0; a < total; a++)
        iu->off[ui->e[a].item + 1]++;
    for (size_t i = 0; i < n; i++)
        iu->off[i + 1] += iu->off[i];
    memcpy(fill, iu->off, (n + 1) * sizeof(size_t));
    for (size_t u = 0; u < ui->n_users; u++) {
        for (size_t a = ui->off[u]; a < ui->off[u + 1]; a++) {
            uint32_t i = ui->e[a].item;
            iu->user[fill[i]] = (uint32_t)u;
            iu->w[fill[i]++] = ui->e[a].weight;
            iu->norm[i] += (double)ui->e[a].weight * ui->e[a].weight;
        }
    }
    for (size_t i = 0; i < n; i++)
        iu->norm[i] = sqrt(iu->norm[i]);
    free(fill);
    return 0;
}

static void free_item_users(struct item_users *iu)
{
    free(iu->off);
    free(iu->user);
    free(iu->w);
    free(iu->norm);
}

static int run_workers(struct job *jb, int threads)
{
    pthread_t tid[MAX_THREADS];
    int started = 0;
    struct cascade_progress prog;
    cascade_progress_start(&prog, "itemcf", "items", jb->res->n_items, jb->quiet);
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker, jb) != 0)
            break;
    if (started == 0)
        worker(jb); /* no threads available: do it here */
    /* Report progress while the workers run (polling a counter, once a second). */
    while (started > 0 && atomic_load(&jb->done) < jb->res->n_items && !atomic_load(&jb->failed)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        cascade_progress_update(&prog, atomic_load(&jb->done));
    }
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    jb->res->seconds = cascade_progress_finish(&prog, atomic_load(&jb->done));
    return atomic_load(&jb->failed);
}

int cascade_itemcf_compute(const cascade_dataset *ds, const struct cascade_itemcf_opts *o,
                           struct cascade_itemcf_result *res, char *err, size_t errlen)
{
    struct cascade_ui ui = {0};
    struct item_users iu = {0};
    struct job jb = {.ds = ds, .res = res, .quiet = o->quiet};
    int rc = CASCADE_ENOMEM;
    memset(res, 0, sizeof(*res));
    if (o->top_k == 0 || o->top_k > MAX_K) {
        snprintf(err, errlen, "itemcf: top-k must be in [1, %d], got %zu", MAX_K, o->top_k);
        return CASCADE_EINVAL;
    }
    res->n_items = ds->n_items;
    res->k = o->top_k;
    res->count = calloc(ds->n_items + 1, sizeof(uint32_t));
    res->nbr = malloc((ds->n_items * o->top_k + 1) * sizeof(uint32_t));
    res->score = malloc((ds->n_items * o->top_k + 1) * sizeof(float));
    if (!res->count || !res->nbr || !res->score)
        goto out;
    if (cascade_ui_build(ds, &o->weights, o->max_items_per_user, &ui) != 0 ||
        build_item_users(ds, &ui, &iu) != 0)
        goto out;
    jb.ui = &ui;
    jb.iu = &iu;
    int threads = o->threads < 1 ? 1 : (o->threads > MAX_THREADS ? MAX_THREADS : o->threads);
    rc = run_workers(&jb, threads);
    res->pairs = atomic_load(&jb.pairs);
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "itemcf: out of memory for %zu items", ds->n_items);
    if (rc != 0)
        cascade_itemcf_result_free(res);
    cascade_ui_free(&ui);
    free_item_users(&iu);
    return rc;
}

void cascade_itemcf_result_free(struct cascade_itemcf_result *res)
{
    free(res->count);
    free(res->nbr);
    free(res->score);
    res->count = NULL;
    res->nbr = NULL;
    res->score = NULL;
}

int cascade_itemcf_store(const cascade_dataset *ds, const struct cascade_itemcf_result *res,
                         cascade_redis *r, const char *ns, size_t pipeline, bool quiet,
                         size_t *written, char *err, size_t errlen)
{
    struct cascade_pipeline pl;
    struct cascade_progress prog;
    char key[CASCADE_KEY_MAX];
    cascade_v1_NeighbourList list;
    uint8_t buf[cascade_v1_NeighbourList_size];
    int rc = 0;
    *written = 0;
    cascade_pipeline_init(&pl, r, pipeline);
    cascade_progress_start(&prog, "itemcf", "lists written", res->n_items, quiet);
    for (size_t i = 0; i < res->n_items && rc == 0; i++) {
        cascade_key_i2i(key, ns, "itemcf", ds->items[i].id);
        size_t len = 0;
        if (res->count[i] == 0) {
            const char *argv[] = {"UNLINK", key};
            size_t lens[] = {6, strlen(key)};
            rc = cascade_pipeline_add(&pl, 2, argv, lens);
            continue;
        }
        memset(&list, 0, sizeof(list));
        list.neighbours_count = (pb_size_t)res->count[i];
        for (uint32_t t = 0; t < res->count[i]; t++) {
            list.neighbours[t].item_id = ds->items[res->nbr[i * res->k + t]].id;
            list.neighbours[t].score = res->score[i * res->k + t];
        }
        rc = cascade_record_encode(cascade_v1_NeighbourList_fields, &list, buf, sizeof(buf), &len);
        if (rc != 0) {
            snprintf(err, errlen, "itemcf: neighbour list of item %" PRIu64 " does not encode",
                     ds->items[i].id);
            return rc;
        }
        const char *argv[] = {"SET", key, (const char *)buf};
        size_t lens[] = {3, strlen(key), len};
        rc = cascade_pipeline_add(&pl, 3, argv, lens);
        (*written)++;
        if ((i & 1023) == 0)
            cascade_progress_update(&prog, i);
    }
    if (rc == 0)
        rc = cascade_pipeline_flush(&pl);
    cascade_progress_finish(&prog, res->n_items);
    if (rc != 0)
        snprintf(err, errlen, "%s (while writing itemcf lists)", pl.err);
    return rc;
}
