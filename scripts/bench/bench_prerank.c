/* Pre-rank scoring benchmark, in-process: per round, prepare one user's
 * features and score C candidates with the hashed-feature LR (features +
 * model), then sort by score, as the PreRank service does after fetching
 * records. Prints p50/p99/max per round over R rounds (Redis not included).
 * The model is --model FILE (a prerank-lr-*.safetensors), else a random one.
 * Usage: cascade-bench-prerank [--candidates C] [--rounds R] [--bits B]
 * [--model FILE] [--seed S] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hashlr.h"
#include "prerank_features.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct scored {
    float score;
    uint64_t id;
};

static int cmp_scored(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* A model with random weights where training would have put some. */
static cascade_hashlr *random_model(unsigned bits)
{
    struct cascade_hashlr_train_opts o;
    cascade_hashlr_train_defaults(&o);
    cascade_hashlr *m = cascade_hashlr_create(bits, CASCADE_PRERANK_SPEC);
    uint32_t idx[CASCADE_PRERANK_FEATURES];
    for (int i = 0; m && i < 200000; i++) {
        for (int j = 0; j < CASCADE_PRERANK_FEATURES; j++)
            idx[j] = cascade_hashlr_bucket(rnd(), bits);
        cascade_hashlr_update(m, idx, CASCADE_PRERANK_FEATURES, (float)(rnd() % 10 == 0), &o);
    }
    return m;
}

static void random_records(cascade_v1_UserRecord *u, cascade_v1_ItemRecord *items, int n)
{
    *u = (cascade_v1_UserRecord)cascade_v1_UserRecord_init_zero;
    snprintf(u->user_id, sizeof u->user_id, "u%llu", (unsigned long long)(rnd() % 100000));
    u->age = 18 + (uint32_t)(rnd() % 50);
    u->gender = 1 + (uint32_t)(rnd() % 2);
    u->city = 1 + (uint32_t)(rnd() % 50);
    u->clicks = (uint32_t)(rnd() % 500);
    u->affinities_count = 16;
    for (int i = 0; i < 16; i++)
        u->affinities[i] = (cascade_v1_CategoryAffinity){.category = (uint32_t)(rnd() % 40),
                                                         .weight = (float)(rnd() % 100) / 10};
    u->interests_count = 4;
    for (int i = 0; i < 4; i++)
        u->interests[i] = (uint32_t)(rnd() % 40);
    for (int i = 0; i < n; i++) {
        cascade_v1_ItemRecord *it = &items[i];
        *it = (cascade_v1_ItemRecord)cascade_v1_ItemRecord_init_zero;
        it->item_id = 1 + rnd() % 1000000;
        it->author_id = 1 + rnd() % 20000;
        it->category = (uint32_t)(rnd() % 40);
        it->city = 1 + (uint32_t)(rnd() % 50);
        it->created_at_s = 1700000000 - (int64_t)(rnd() % 8640000);
        it->media_type = 1 + (uint32_t)(rnd() % 2);
        it->has_stats = true;
        it->stats.impressions = (uint32_t)(rnd() % 100000);
        it->stats.clicks = it->stats.impressions / (5 + (uint32_t)(rnd() % 40));
    }
}

int main(int argc, char **argv)
{
    int candidates = 2000, rounds = 2000, bits = 20;
    const char *model_path = NULL;
    unsigned long long seed = 1;
    static const struct option longopts[] = {{"candidates", 1, 0, 'c'}, {"rounds", 1, 0, 'r'},
                                             {"bits", 1, 0, 'b'},       {"model", 1, 0, 'm'},
                                             {"seed", 1, 0, 's'},       {0, 0, 0, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        if (ch == 'c')
            candidates = atoi(optarg);
        else if (ch == 'r')
            rounds = atoi(optarg);
        else if (ch == 'b')
            bits = atoi(optarg);
        else if (ch == 'm')
            model_path = optarg;
        else if (ch == 's')
            seed = strtoull(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: cascade-bench-prerank [--candidates C] [--rounds R] "
                            "[--bits B] [--model FILE] [--seed S]\n");
            return 2;
        }
    }
    if (candidates < 1 || rounds < 1) {
        fprintf(stderr, "cascade-bench-prerank: --candidates and --rounds must be >= 1\n");
        return 2;
    }
    rng_state = seed;
    char err[512] = "";
    cascade_hashlr *m = model_path ? cascade_hashlr_load(model_path, err, sizeof err)
                                   : random_model((unsigned)bits);
    cascade_v1_ItemRecord *items = malloc((size_t)candidates * sizeof *items);
    struct scored *out = malloc((size_t)candidates * sizeof *out);
    double *lat = malloc((size_t)rounds * sizeof *lat);
    if (!m || !items || !out || !lat) {
        fprintf(stderr, "cascade-bench-prerank: %s\n",
                err[0] ? err : "bad --bits or out of memory");
        return 1;
    }
    unsigned mbits = cascade_hashlr_bits(m);
    cascade_v1_UserRecord user;
    volatile float sink = 0;
    for (int r = 0; r < rounds; r++) {
        random_records(&user, items, candidates);
        double t0 = now_us();
        struct cascade_prerank_user pu;
        uint32_t idx[CASCADE_PRERANK_FEATURES];
        cascade_prerank_user_prepare(&user, NULL, &pu);
        for (int i = 0; i < candidates; i++) {
            cascade_prerank_features(&pu, &items[i], 1700000000, mbits, idx);
            out[i].score = cascade_hashlr_predict(m, idx, CASCADE_PRERANK_FEATURES);
            out[i].id = items[i].item_id;
        }
        qsort(out, (size_t)candidates, sizeof *out, cmp_scored);
        lat[r] = now_us() - t0;
        sink += out[0].score;
    }
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_double);
    printf("prerank scoring, %d candidates, %d features, 2^%u weights (%s), %d rounds:\n",
           candidates, CASCADE_PRERANK_FEATURES, mbits, model_path ? model_path : "random model",
           rounds);
    printf("  p50 %.0f us  p99 %.0f us  max %.0f us  (%.0f ns per candidate at p50)\n",
           lat[rounds / 2], lat[(size_t)((double)rounds * 0.99)], lat[rounds - 1],
           lat[rounds / 2] * 1e3 / candidates);
    (void)sink;
    free(items);
    free(out);
    free(lat);
    cascade_hashlr_destroy(m);
    return 0;
}
