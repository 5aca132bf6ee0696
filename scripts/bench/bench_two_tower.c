/* Two-tower serving benchmark on a trained model (cascade-build
 * train-two-tower --model-dir DIR): the user vectors of real users (profile
 * and their last interest events from --data, mapped with the model's maps
 * file, as the Recall two_tower channel builds them), the latency of one user
 * vector and of one IVF search for top-500 (the channel's quota) and top-100
 * (p50/p99 of wall and thread CPU time, one call each, one thread), the
 * exact scan next to it, and IVF
 * recall@100 against exact at the default nprobe and at each --sweep value.
 * Usage: cascade-bench-two_tower --model-dir DIR --data DIR [--queries N]
 *        [--last-n N] [--nprobe P] [--sweep p1,p2,...] [--threads T] */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "latest_file.h"
#include "twotower.h"
#include "vindex.h"

#define ERR_LEN 1024
#define MAX_HISTORY 256

struct opts {
    const char *model_dir, *data, *sweep;
    size_t nq, last_n, nprobe;
    int threads;
};

struct user_rec {
    char id[72];
    uint32_t row;
    uint32_t hist[MAX_HISTORY]; /* ring of the last item rows */
    size_t n_hist;
};

struct item_rec {
    uint64_t id;
    uint32_t row;
};

struct bench {
    cascade_twotower *model;
    cascade_vindex *index;
    struct user_rec *users;
    size_t n_users;
    struct item_rec *items;
    size_t n_items;
};

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const struct user_rec *)a)->id, ((const struct user_rec *)b)->id);
}

static int cmp_item(const void *a, const void *b)
{
    uint64_t x = ((const struct item_rec *)a)->id, y = ((const struct item_rec *)b)->id;
    return (x > y) - (x < y);
}

static double clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Latencies of the calls: wall clock, and the thread's CPU time (which
 * leaves out time slices the scheduler gave other processes). */
struct lat {
    double *wall, *cpu;
    double w0, c0;
};

static void lat_start(struct lat *l)
{
    l->w0 = clock_us(CLOCK_MONOTONIC);
    l->c0 = clock_us(CLOCK_THREAD_CPUTIME_ID);
}

static void lat_stop(struct lat *l, size_t i)
{
    l->wall[i] = clock_us(CLOCK_MONOTONIC) - l->w0;
    l->cpu[i] = clock_us(CLOCK_THREAD_CPUTIME_ID) - l->c0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of v[0..n), sorting v. */
static double percentile(double *v, size_t n, int p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)((double)p / 100.0 * (double)(n - 1) + 0.5);
    return v[i];
}

/* The users and items of the maps file (user / item lines; others skipped). */
static int read_maps(struct bench *b, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512], kind[16], id[128];
    size_t row, cap_u = 0, cap_i = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%15s %127s %zu", kind, id, &row) != 3)
            continue;
        if (strcmp(kind, "user") == 0 && strlen(id) < sizeof b->users->id) {
            if (b->n_users == cap_u) {
                cap_u = cap_u ? 2 * cap_u : 1024;
                void *grown = realloc(b->users, cap_u * sizeof *b->users);
                if (!grown)
                    break;
                b->users = grown;
            }
            struct user_rec *u = &b->users[b->n_users++];
            memcpy(u->id, id, strlen(id) + 1); /* fits: checked above */
            u->row = (uint32_t)row;
            u->n_hist = 0;
        } else if (strcmp(kind, "item") == 0) {
            if (b->n_items == cap_i) {
                cap_i = cap_i ? 2 * cap_i : 1024;
                void *grown = realloc(b->items, cap_i * sizeof *b->items);
                if (!grown)
                    break;
                b->items = grown;
            }
            b->items[b->n_items++] = (struct item_rec){strtoull(id, NULL, 10), (uint32_t)row};
        }
    }
    bool complete = feof(f);
    fclose(f);
    if (!complete) {
        fprintf(stderr, "%s: out of memory reading the maps\n", path);
        return -1;
    }
    qsort(b->users, b->n_users, sizeof *b->users, cmp_user);
    qsort(b->items, b->n_items, sizeof *b->items, cmp_item);
    return b->n_users && b->n_items ? 0 : -1;
}

static bool is_interest(const char *type)
{
    static const char *const kinds[] = {"click", "like", "collect", "share", "follow"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(type, kinds[i]) == 0)
            return true;
    return false;
}

/* Every user's interest events of events.tsv (time order), as item rows. */
static int read_histories(struct bench *b, const char *data)
{
    char path[1024], line[512], uid[128], type[32];
    long long ts;
    uint64_t item;
    snprintf(path, sizeof path, "%s/events.tsv", data);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lld %127s %" SCNu64 " %31s", &ts, uid, &item, type) != 4 ||
            !is_interest(type) || strlen(uid) >= sizeof(((struct user_rec *)0)->id))
            continue;
        struct user_rec key, *u;
        struct item_rec ikey = {.id = item}, *it;
        memcpy(key.id, uid, strlen(uid) + 1);
        u = bsearch(&key, b->users, b->n_users, sizeof *b->users, cmp_user);
        it = bsearch(&ikey, b->items, b->n_items, sizeof *b->items, cmp_item);
        if (u && it)
            u->hist[u->n_hist++ % MAX_HISTORY] = it->row;
    }
    fclose(f);
    return 0;
}

/* The features of user u: its row and its last last_n history items (no
 * profile buckets: unknown, row 0, as for a user without a profile). */
static struct cascade_twotower_user features(const struct user_rec *u, size_t last_n, uint32_t *buf)
{
    size_t n = u->n_hist < MAX_HISTORY ? u->n_hist : MAX_HISTORY;
    size_t take = n < last_n ? n : last_n;
    for (size_t i = 0; i < take; i++)
        buf[i] = u->hist[(u->n_hist - take + i) % MAX_HISTORY];
    return (struct cascade_twotower_user){.user_id = u->row, .history = buf, .n_history = take};
}

static int load(struct bench *b, const struct opts *o)
{
    char err[ERR_LEN], path[1024], version[256];
    snprintf(path, sizeof path, "%s/two-tower.latest", o->model_dir);
    if (cascade_latest_read(path, version, sizeof version, err, sizeof err) != 0)
        goto fail;
    char *dot = strstr(version, ".safetensors");
    if (dot)
        *dot = '\0';
    snprintf(path, sizeof path, "%s/%s.safetensors", o->model_dir, version);
    if (cascade_twotower_load(path, &b->model, err, sizeof err) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/%s.items.safetensors", o->model_dir, version);
    if (!(b->index = cascade_vindex_load(path, err, sizeof err)))
        goto fail;
    snprintf(path, sizeof path, "%s/%s.maps.tsv", o->model_dir, version);
    if (read_maps(b, path) != 0 || read_histories(b, o->data) != 0)
        return -1;
    printf("model %s: %zu items, dim %zu, nlist %zu, default nprobe %zu; %zu users\n", version,
           cascade_vindex_size(b->index), cascade_vindex_dim(b->index),
           cascade_vindex_nlist(b->index), cascade_vindex_nprobe(b->index), b->n_users);
    return 0;
fail:
    fprintf(stderr, "bench-two_tower: %s\n", err);
    return -1;
}

/* nq users (an even stride): their vectors into q, the latency of each. */
static int user_vectors(const struct bench *b, const struct opts *o, float *q, struct lat *lat)
{
    char err[ERR_LEN];
    uint32_t hist[MAX_HISTORY];
    size_t dim = cascade_vindex_dim(b->index);
    for (size_t i = 0; i < o->nq; i++) {
        struct cascade_twotower_user f =
            features(&b->users[i * b->n_users / o->nq], o->last_n, hist);
        lat_start(lat);
        if (cascade_twotower_user_vectors(b->model, &f, 1, q + i * dim, err, sizeof err) != 0) {
            fprintf(stderr, "bench-two_tower: %s\n", err);
            return -1;
        }
        lat_stop(lat, i);
    }
    return 0;
}

/* One query per call: p50/p99 of the IVF search (nprobe; exact when SIZE_MAX). */
static int search_latency(const struct bench *b, const struct opts *o, const float *q, size_t k,
                          size_t nprobe, struct lat *lat)
{
    char err[ERR_LEN];
    size_t dim = cascade_vindex_dim(b->index);
    uint64_t *ids = malloc(k * sizeof *ids);
    float *scores = malloc(k * sizeof *scores);
    int rc = ids && scores ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < o->nq; i++) {
        lat_start(lat);
        rc = nprobe == SIZE_MAX ? cascade_vindex_search_exact(b->index, q + i * dim, 1, dim, k, ids,
                                                              scores, err, sizeof err)
                                : cascade_vindex_search(b->index, q + i * dim, 1, dim, k, nprobe,
                                                        ids, scores, err, sizeof err);
        lat_stop(lat, i);
    }
    if (rc != 0)
        fprintf(stderr, "bench-two_tower: search: %s\n", err);
    free(ids);
    free(scores);
    return rc;
}

static void print_lat(const char *name, struct lat *l, size_t n)
{
    printf("%-16s p50 %7.1f us  p99 %7.1f us  |  CPU p50 %7.1f us  p99 %7.1f us\n", name,
           percentile(l->wall, n, 50), percentile(l->wall, n, 99), percentile(l->cpu, n, 50),
           percentile(l->cpu, n, 99));
}

static void recall_row(const struct bench *b, const struct opts *o, const float *q, size_t nprobe)
{
    char err[ERR_LEN];
    double r = 0;
    size_t dim = cascade_vindex_dim(b->index), nlist = cascade_vindex_nlist(b->index);
    size_t used = nprobe ? nprobe : cascade_vindex_nprobe(b->index);
    if (cascade_vindex_recall_vs_exact(b->index, q, o->nq, dim, 100, nprobe, &r, err, sizeof err))
        fprintf(stderr, "bench-two_tower: recall: %s\n", err);
    else
        printf("ivf recall@100 vs exact  nprobe %4zu (nlist/%.1f)%s: %.4f\n", used,
               (double)nlist / (double)used, nprobe ? "" : " default", r);
}

static int run(const struct bench *b, const struct opts *o)
{
    size_t dim = cascade_vindex_dim(b->index), nprobe = o->nprobe;
    float *q = malloc(o->nq * dim * sizeof *q);
    struct lat lat = {malloc(o->nq * sizeof(double)), malloc(o->nq * sizeof(double)), 0, 0};
    static const size_t ks[] = {500, 100};
    int rc = q && lat.wall && lat.cpu ? user_vectors(b, o, q, &lat) : -1;
    if (rc != 0)
        goto out;
    printf("%zu queries, last-n %zu, one call per query, %d BLAS thread(s); wall / thread CPU\n",
           o->nq, o->last_n, o->threads);
    print_lat("user vector", &lat, o->nq);
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char name[64];
        size_t k = ks[i] < cascade_vindex_size(b->index) ? ks[i] : cascade_vindex_size(b->index);
        for (int exact = 0; exact < 2 && rc == 0; exact++) {
            if ((rc = search_latency(b, o, q, k, exact ? SIZE_MAX : nprobe, &lat)) != 0)
                break;
            snprintf(name, sizeof name, "%s top-%zu", exact ? "exact" : "ivf", k);
            print_lat(name, &lat, o->nq);
        }
    }
    recall_row(b, o, q, nprobe);
    for (const char *s = o->sweep; s && *s && rc == 0;) {
        char *end;
        size_t p = strtoul(s, &end, 10);
        if (end == s)
            break;
        recall_row(b, o, q, p);
        s = *end == ',' ? end + 1 : end;
    }
out:
    free(q);
    free(lat.wall);
    free(lat.cpu);
    return rc;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"model-dir", required_argument, NULL, 'm'}, {"data", required_argument, NULL, 'd'},
        {"queries", required_argument, NULL, 'q'},   {"last-n", required_argument, NULL, 'l'},
        {"nprobe", required_argument, NULL, 'p'},    {"sweep", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},   {NULL, 0, NULL, 0}};
    int c;
    *o = (struct opts){.nq = 1000, .last_n = 20, .threads = 1};
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model_dir = optarg;
            break;
        case 'd':
            o->data = optarg;
            break;
        case 'q':
            o->nq = strtoul(optarg, NULL, 10);
            break;
        case 'l':
            o->last_n = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o->nprobe = strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->sweep = optarg;
            break;
        case 't':
            o->threads = atoi(optarg);
            break;
        default:
            return -1;
        }
    }
    if (!o->model_dir || !o->data || o->nq == 0 || o->threads < 1) {
        fprintf(stderr, "usage: cascade-bench-two_tower --model-dir DIR --data DIR [--queries N] "
                        "[--last-n N] [--nprobe P] [--sweep p1,p2,...] [--threads T]\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct bench b = {0};
    int rc = 1;
    if (parse(argc, argv, &o) != 0)
        return 2;
    openblas_set_num_threads(o.threads);
    if (load(&b, &o) == 0) {
        if (o.nq > b.n_users)
            o.nq = b.n_users;
        rc = run(&b, &o) == 0 ? 0 : 1;
    }
    cascade_twotower_destroy(b.model);
    cascade_vindex_destroy(b.index);
    free(b.users);
    free(b.items);
    return rc;
}
