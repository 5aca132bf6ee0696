/* The synthetic world behind cascade-datagen. Everything is drawn from one
 * seeded generator in a fixed order, so a seed reproduces the files exactly.
 * The generator knows each impression's true click probability (truth.tsv),
 * which gives an oracle AUC to compare trained models against. */
#include "datagen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "idmap.h"
#include "progress.h"
#include "rng.h"

#define DAY_S 86400
#define TAGS_PER_CATEGORY 8
#define CIRCLE_FAVOURITES 5
#define GEOHASH_PRECISION 7
#define PICK_TRIES 32

/* Vose alias table: O(1) sampling from a fixed discrete distribution. */
struct alias {
    size_t n;
    double *prob;
    uint32_t *alias;
};

struct world {
    const struct cascade_datagen_opts *o;
    struct cascade_rng rng;
    int64_t start, end;
    uint32_t K; /* categories, ids 1..K */
    /* cities 1..C */
    double *city_lat, *city_lon;
    struct alias city_pick;
    /* categories */
    double *cat_pop; /* [K], index c-1 */
    struct alias cat_pick;
    /* authors 1..A */
    uint32_t *author_primary, *author_secondary, *author_city;
    double *author_quality;
    struct alias author_pick;
    /* circles */
    size_t n_circles;
    float *circle_theta; /* n_circles × K */
    uint32_t *circle_city;
    uint32_t *circle_fav; /* n_circles × CIRCLE_FAVOURITES item indices */
    /* users */
    float *theta; /* users × K, rows sum to 1 */
    double *user_bias;
    int32_t *user_circle; /* -1: none */
    struct alias user_pick;
    /* items */
    double *quality;
    struct alias item_pick;  /* global popularity */
    struct alias *cat_items; /* per category, over cat_members */
    uint32_t **cat_members;  /* item indices per category */
    size_t *cat_count;
    /* (user, item) pairs already shown: a feed does not repeat itself. */
    cascade_idmap shown; /* heap map, keys only */
};

void cascade_datagen_defaults(struct cascade_datagen_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->users = 10000;
    o->items = 2000;
    o->events = 300000;
    o->categories = 20;
    o->authors = 200;
    o->cities = 10;
    o->days = 30;
    o->seed = 1;
    o->truth = true;
}

/* ---- alias tables ---- */

static void alias_free(struct alias *a)
{
    free(a->prob);
    free(a->alias);
    a->prob = NULL;
    a->alias = NULL;
}

static int alias_build(struct alias *a, const double *w, size_t n)
{
    double total = 0;
    size_t *small = malloc((n + 1) * sizeof(size_t)), *large = malloc((n + 1) * sizeof(size_t));
    size_t ns = 0, nl = 0;
    a->n = n;
    a->prob = malloc((n + 1) * sizeof(double));
    a->alias = malloc((n + 1) * sizeof(uint32_t));
    if (!small || !large || !a->prob || !a->alias) {
        free(small);
        free(large);
        alias_free(a);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        total += w[i];
    for (size_t i = 0; i < n; i++) {
        a->prob[i] = total > 0 ? w[i] * (double)n / total : 1.0;
        a->alias[i] = (uint32_t)i;
        if (a->prob[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        size_t s = small[--ns], l = large[nl - 1];
        a->alias[s] = (uint32_t)l;
        a->prob[l] -= 1.0 - a->prob[s];
        if (a->prob[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl)
        a->prob[large[--nl]] = 1.0;
    while (ns)
        a->prob[small[--ns]] = 1.0;
    free(small);
    free(large);
    return 0;
}

static size_t alias_sample(const struct alias *a, struct cascade_rng *r)
{
    double x = cascade_rng_uniform(r) * (double)a->n;
    size_t i = (size_t)x;
    if (i >= a->n)
        i = a->n - 1;
    return (x - (double)i) < a->prob[i] ? i : a->alias[i];
}

/* ---- helpers ---- */

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* Zipf weights 1/(rank+1)^s for ranks 0..n-1. */
static void zipf(double *w, size_t n, double s)
{
    for (size_t i = 0; i < n; i++)
        w[i] = pow((double)i + 1.0, -s);
}

/* A Dirichlet(alpha) draw over K categories into theta (float). */
static void dirichlet(struct cascade_rng *r, double alpha, uint32_t K, float *theta)
{
    double sum = 0, g[1024];
    double *buf = K <= 1024 ? g : malloc(K * sizeof(double));
    if (!buf) {
        for (uint32_t k = 0; k < K; k++)
            theta[k] = 1.0f / (float)K;
        return;
    }
    for (uint32_t k = 0; k < K; k++)
        sum += buf[k] = cascade_rng_gamma(r, alpha);
    if (!(sum > 0)) {
        memset(buf, 0, K * sizeof(double));
        buf[cascade_rng_below(r, K)] = sum = 1.0;
    }
    for (uint32_t k = 0; k < K; k++)
        theta[k] = (float)(buf[k] / sum);
    if (buf != g)
        free(buf);
}

/* Category (1..K) drawn from a user's interest vector. */
static uint32_t sample_theta(struct cascade_rng *r, const float *theta, uint32_t K)
{
    double x = cascade_rng_uniform(r), acc = 0;
    for (uint32_t k = 0; k < K; k++) {
        acc += theta[k];
        if (x < acc)
            return k + 1;
    }
    return K;
}

static void place_near(struct cascade_rng *r, const struct world *w, uint32_t city, double spread,
                       char *geohash)
{
    double lat = w->city_lat[city - 1] + spread * cascade_rng_normal(r);
    double lon = w->city_lon[city - 1] + spread * cascade_rng_normal(r);
    cascade_geohash_encode(lat, lon, GEOHASH_PRECISION, geohash);
}

/* ---- the world ---- */

static int make_geography(struct world *w)
{
    uint32_t C = w->o->cities;
    double *weights = malloc(C * sizeof(double));
    w->city_lat = malloc(C * sizeof(double));
    w->city_lon = malloc(C * sizeof(double));
    if (!weights || !w->city_lat || !w->city_lon) {
        free(weights);
        return CASCADE_ENOMEM;
    }
    for (uint32_t c = 0; c < C; c++) {
        w->city_lat[c] = 22.0 + 18.0 * cascade_rng_uniform(&w->rng);
        w->city_lon[c] = 103.0 + 19.0 * cascade_rng_uniform(&w->rng);
    }
    zipf(weights, C, 1.0); /* city 1 is the biggest */
    int rc = alias_build(&w->city_pick, weights, C);
    free(weights);
    return rc;
}

static int make_categories_and_authors(struct world *w)
{
    uint32_t K = w->K, A = w->o->authors;
    double *aw = malloc(A * sizeof(double));
    w->cat_pop = malloc(K * sizeof(double));
    w->author_primary = malloc(A * sizeof(uint32_t));
    w->author_secondary = malloc(A * sizeof(uint32_t));
    w->author_city = malloc(A * sizeof(uint32_t));
    w->author_quality = malloc(A * sizeof(double));
    if (!aw || !w->cat_pop || !w->author_primary || !w->author_secondary || !w->author_city ||
        !w->author_quality) {
        free(aw);
        return CASCADE_ENOMEM;
    }
    zipf(w->cat_pop, K, 0.7);
    int rc = alias_build(&w->cat_pick, w->cat_pop, K);
    if (rc)
        goto out;
    for (uint32_t a = 0; a < A; a++) {
        w->author_primary[a] = (uint32_t)alias_sample(&w->cat_pick, &w->rng) + 1;
        w->author_secondary[a] = (uint32_t)cascade_rng_below(&w->rng, K) + 1;
        w->author_city[a] = (uint32_t)alias_sample(&w->city_pick, &w->rng) + 1;
        w->author_quality[a] = 0.3 * cascade_rng_normal(&w->rng);
        aw[a] = exp(1.2 * cascade_rng_normal(&w->rng)); /* a few prolific authors */
    }
    rc = alias_build(&w->author_pick, aw, A);
out:
    free(aw);
    return rc;
}

static int make_circles(struct world *w)
{
    uint32_t K = w->K;
    w->n_circles = w->o->users / 16 + 1;
    w->circle_theta = malloc(w->n_circles * K * sizeof(float));
    w->circle_city = malloc(w->n_circles * sizeof(uint32_t));
    w->circle_fav = calloc(w->n_circles * CIRCLE_FAVOURITES, sizeof(uint32_t));
    if (!w->circle_theta || !w->circle_city || !w->circle_fav)
        return CASCADE_ENOMEM;
    for (size_t c = 0; c < w->n_circles; c++) {
        dirichlet(&w->rng, 0.1, K, w->circle_theta + c * K);
        w->circle_city[c] = (uint32_t)alias_sample(&w->city_pick, &w->rng) + 1;
    }
    return 0;
}

/* Declared interests: the user's strongest categories (theta >= 0.15, at most 3). */
static void declare_interests(const float *theta, uint32_t K, struct cascade_ds_user *u)
{
    u->n_interests = 0;
    for (int pick = 0; pick < 3; pick++) {
        uint32_t best = 0;
        float best_v = 0.15f;
        for (uint32_t k = 0; k < K; k++) {
            bool taken = false;
            for (uint32_t j = 0; j < u->n_interests; j++)
                taken |= u->interests[j] == k + 1;
            if (!taken && theta[k] >= best_v) {
                best_v = theta[k];
                best = k + 1;
            }
        }
        if (!best)
            break;
        u->interests[u->n_interests++] = best;
    }
}

static int make_users(struct world *w, cascade_dataset *ds)
{
    size_t N = w->o->users;
    uint32_t K = w->K;
    double *activity = malloc(N * sizeof(double));
    w->theta = malloc(N * K * sizeof(float));
    w->user_bias = malloc(N * sizeof(double));
    w->user_circle = malloc(N * sizeof(int32_t));
    if (!activity || !w->theta || !w->user_bias || !w->user_circle) {
        free(activity);
        return CASCADE_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < N && rc == 0; i++) {
        struct cascade_ds_user u = {0};
        float *theta = w->theta + i * K;
        snprintf(u.id, sizeof(u.id), "u%zu", i + 1);
        dirichlet(&w->rng, 0.1, K, theta);
        w->user_circle[i] = -1;
        u.city = (uint32_t)alias_sample(&w->city_pick, &w->rng) + 1;
        if (cascade_rng_bernoulli(&w->rng, 0.5)) { /* half the users belong to a circle */
            size_t c = cascade_rng_below(&w->rng, w->n_circles);
            const float *ct = w->circle_theta + c * K;
            w->user_circle[i] = (int32_t)c;
            for (uint32_t k = 0; k < K; k++)
                theta[k] = 0.7f * ct[k] + 0.3f * theta[k];
            if (cascade_rng_bernoulli(&w->rng, 0.8))
                u.city = w->circle_city[c];
        }
        double age = 18 + fabs(12.0 * cascade_rng_normal(&w->rng));
        u.age = (uint32_t)(age > 70 ? 70 : age);
        double g = cascade_rng_uniform(&w->rng);
        u.gender = g < 0.48 ? 1 : (g < 0.96 ? 2 : 0);
        place_near(&w->rng, w, u.city, 0.08, u.geohash);
        if (cascade_rng_bernoulli(&w->rng, 0.75))
            declare_interests(theta, K, &u);
        w->user_bias[i] = 0.4 * cascade_rng_normal(&w->rng);
        activity[i] = exp(1.0 * cascade_rng_normal(&w->rng));
        rc = cascade_dataset_add_user(ds, &u, NULL);
    }
    if (rc == 0)
        rc = alias_build(&w->user_pick, activity, N);
    free(activity);
    return rc;
}

static uint32_t item_category(struct world *w, uint32_t author)
{
    double x = cascade_rng_uniform(&w->rng);
    if (x < 0.75)
        return w->author_primary[author];
    if (x < 0.9)
        return w->author_secondary[author];
    return (uint32_t)alias_sample(&w->cat_pick, &w->rng) + 1;
}

static void item_tags(struct world *w, struct cascade_ds_item *it)
{
    uint32_t n = 2 + (uint32_t)cascade_rng_below(&w->rng, 3);
    it->n_tags = 0;
    for (uint32_t t = 0; t < n; t++) {
        /* Tags of a category are (c-1)*8+1 .. c*8, the first ones more common. */
        uint32_t local = (uint32_t)(TAGS_PER_CATEGORY * pow(cascade_rng_uniform(&w->rng), 2.0));
        uint32_t tag = (it->category - 1) * TAGS_PER_CATEGORY + local + 1;
        bool dup = false;
        for (uint32_t j = 0; j < it->n_tags; j++)
            dup |= it->tags[j] == tag;
        if (!dup)
            it->tags[it->n_tags++] = tag;
    }
}

static void make_item(struct world *w, size_t i, struct cascade_ds_item *it)
{
    uint32_t author = (uint32_t)alias_sample(&w->author_pick, &w->rng);
    it->id = i + 1;
    it->author_id = author + 1;
    it->category = item_category(w, author);
    item_tags(w, it);
    /* A fifth of the catalogue predates the log; the rest appears during it. */
    if (cascade_rng_bernoulli(&w->rng, 0.2))
        it->created_at = w->start - (int64_t)(cascade_rng_uniform(&w->rng) * 30 * DAY_S);
    else
        it->created_at =
            w->start + (int64_t)(cascade_rng_uniform(&w->rng) * (double)(w->end - w->start));
    it->city = cascade_rng_bernoulli(&w->rng, 0.9)
                   ? w->author_city[author]
                   : (uint32_t)alias_sample(&w->city_pick, &w->rng) + 1;
    place_near(&w->rng, w, it->city, 0.05, it->geohash);
    if (cascade_rng_bernoulli(&w->rng, 0.55)) {
        double d = exp(log(40.0) + 0.8 * cascade_rng_normal(&w->rng));
        d = d < 5 ? 5 : (d > 900 ? 900 : d);
        it->media_type = 2;
        it->duration_s = (float)(round(d * 10) / 10);
    } else {
        it->media_type = 1;
    }
    w->quality[i] = w->author_quality[author] + 0.5 * cascade_rng_normal(&w->rng);
}

struct rank_key {
    double key;
    size_t item;
};

static int cmp_rank_key(const void *a, const void *b)
{
    double x = ((const struct rank_key *)a)->key, y = ((const struct rank_key *)b)->key;
    if (x != y)
        return x > y ? -1 : 1;
    size_t i = ((const struct rank_key *)a)->item, j = ((const struct rank_key *)b)->item;
    return (i > j) - (i < j);
}

/* Popularity: Zipf over a ranking that mostly follows quality. */
static int make_popularity(struct world *w, double *pop)
{
    size_t M = w->o->items;
    struct rank_key *keys = malloc(M * sizeof(*keys));
    if (!keys)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < M; i++)
        keys[i] = (struct rank_key){w->quality[i] + 0.7 * cascade_rng_normal(&w->rng), i};
    qsort(keys, M, sizeof(*keys), cmp_rank_key);
    for (size_t r = 0; r < M; r++)
        pop[keys[r].item] = pow((double)r + 1.0, -1.0);
    free(keys);
    return 0;
}

static int index_categories(struct world *w, const cascade_dataset *ds, const double *pop)
{
    uint32_t K = w->K;
    w->cat_count = calloc(K, sizeof(size_t));
    w->cat_members = calloc(K, sizeof(uint32_t *));
    w->cat_items = calloc(K, sizeof(struct alias));
    double *buf = malloc((ds->n_items + 1) * sizeof(double));
    int rc = 0;
    if (!w->cat_count || !w->cat_members || !w->cat_items || !buf) {
        free(buf);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < ds->n_items; i++)
        w->cat_count[ds->items[i].category - 1]++;
    for (uint32_t c = 0; c < K && rc == 0; c++) {
        w->cat_members[c] = malloc((w->cat_count[c] + 1) * sizeof(uint32_t));
        if (!w->cat_members[c]) {
            rc = CASCADE_ENOMEM;
            break;
        }
        size_t n = 0;
        for (size_t i = 0; i < ds->n_items; i++)
            if (ds->items[i].category == c + 1) {
                w->cat_members[c][n] = (uint32_t)i;
                buf[n++] = pop[i];
            }
        if (n)
            rc = alias_build(&w->cat_items[c], buf, n);
    }
    free(buf);
    return rc;
}

static int make_items(struct world *w, cascade_dataset *ds)
{
    size_t M = w->o->items;
    double *pop = malloc(M * sizeof(double));
    w->quality = malloc(M * sizeof(double));
    int rc = 0;
    if (!pop || !w->quality) {
        free(pop);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < M && rc == 0; i++) {
        struct cascade_ds_item it = {0};
        make_item(w, i, &it);
        rc = cascade_dataset_add_item(ds, &it, NULL);
    }
    if (rc == 0)
        rc = make_popularity(w, pop);
    if (rc == 0)
        rc = alias_build(&w->item_pick, pop, M);
    if (rc == 0)
        rc = index_categories(w, ds, pop);
    /* Each circle shares a few favourite items from its strongest category. */
    for (size_t c = 0; c < w->n_circles && rc == 0; c++) {
        const float *ct = w->circle_theta + c * w->K;
        uint32_t best = 0;
        for (uint32_t k = 1; k < w->K; k++)
            if (ct[k] > ct[best])
                best = k;
        for (int f = 0; f < CIRCLE_FAVOURITES; f++) {
            size_t pick = w->cat_count[best]
                              ? w->cat_members[best][alias_sample(&w->cat_items[best], &w->rng)]
                              : alias_sample(&w->item_pick, &w->rng);
            w->circle_fav[c * CIRCLE_FAVOURITES + f] = (uint32_t)pick;
        }
    }
    free(pop);
    return rc;
}

static bool is_circle_favourite(const struct world *w, size_t user, uint32_t item)
{
    int32_t c = w->user_circle[user];
    if (c < 0)
        return false;
    for (int f = 0; f < CIRCLE_FAVOURITES; f++)
        if (w->circle_fav[(size_t)c * CIRCLE_FAVOURITES + f] == item)
            return true;
    return false;
}

/* One candidate for user at time ts: a circle favourite, an item of a category
 * from the user's interests, or a globally popular item. */
static long candidate(struct world *w, size_t user)
{
    double x = cascade_rng_uniform(&w->rng);
    int32_t c = w->user_circle[user];
    if (c >= 0 && x < 0.06)
        return w->circle_fav[(size_t)c * CIRCLE_FAVOURITES +
                             cascade_rng_below(&w->rng, CIRCLE_FAVOURITES)];
    if (x < 0.78) {
        uint32_t cat = sample_theta(&w->rng, w->theta + user * w->K, w->K) - 1;
        if (!w->cat_count[cat])
            return -1;
        return w->cat_members[cat][alias_sample(&w->cat_items[cat], &w->rng)];
    }
    return (long)alias_sample(&w->item_pick, &w->rng);
}

static uint64_t pair_key(const struct world *w, size_t user, size_t item)
{
    return (uint64_t)user * w->o->items + item;
}

static bool was_shown(const struct world *w, size_t user, size_t item)
{
    return cascade_idmap_find(&w->shown, pair_key(w, user, item)) != NULL;
}

/* 0 or CASCADE_ENOMEM. */
static int mark_shown(struct world *w, size_t user, size_t item)
{
    return cascade_idmap_upsert(&w->shown, pair_key(w, user, item), NULL) ? 0 : CASCADE_ENOMEM;
}

/* Feeds favour fresh items: accept a created candidate with a probability
 * that decays with its age. Returns -1 when nothing suitable was found. */
static long pick_item(struct world *w, const cascade_dataset *ds, size_t user, int64_t ts)
{
    long fallback = -1;
    for (int t = 0; t < PICK_TRIES; t++) {
        long j = candidate(w, user);
        if (j < 0 || ds->items[j].created_at > ts || was_shown(w, user, (size_t)j))
            continue;
        fallback = j;
        double age_days = (double)(ts - ds->items[j].created_at) / DAY_S;
        if (cascade_rng_uniform(&w->rng) < 0.35 + 0.65 * exp(-age_days / 7.0))
            return j;
    }
    return fallback;
}

/* True click probability: affinity of the user to the item's category,
 * item quality, user propensity, locality, circle favourites, freshness.
 * terms[CASCADE_DATAGEN_TERMS] receives the logit's terms (its intercept
 * CASCADE_DATAGEN_INTERCEPT excluded), in the order of truth.tsv. */
static double click_probability(const struct world *w, const cascade_dataset *ds, size_t user,
                                uint32_t item, int64_t ts, double *affinity, float *terms)
{
    const struct cascade_ds_item *it = &ds->items[item];
    double s = w->theta[user * w->K + it->category - 1];
    double aff = log((double)w->K * s + 0.05);
    double age_days = (double)(ts - it->created_at) / DAY_S;
    double t[CASCADE_DATAGEN_TERMS] = {
        0.65 * aff,
        w->quality[item],
        w->user_bias[user],
        -0.02 * age_days,
        ds->users[user].city == it->city ? 0.3 : 0.0,
        is_circle_favourite(w, user, item) ? 0.9 : 0.0,
    };
    double z = CASCADE_DATAGEN_INTERCEPT;
    for (int i = 0; i < CASCADE_DATAGEN_TERMS; i++) {
        z += t[i];
        terms[i] = (float)t[i];
    }
    *affinity = aff;
    return sigmoid(z);
}

struct event_sink {
    cascade_dataset *ds;
    float *p;     /* parallel to ds->events */
    float *terms; /* CASCADE_DATAGEN_TERMS per event, only with want_terms */
    bool want_terms;
    size_t cap;
    struct cascade_datagen_summary *sum;
};

/* Append an event with its truth (p -1 and terms NULL for non-impressions). */
static int emit(struct event_sink *k, int64_t ts, size_t user, uint32_t item, uint32_t type,
                float value, float p, const float *terms)
{
    if (k->ds->n_events >= k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 1024;
        float *np = realloc(k->p, ncap * sizeof(float));
        if (!np)
            return CASCADE_ENOMEM;
        k->p = np;
        if (k->want_terms) {
            float *nt = realloc(k->terms, ncap * CASCADE_DATAGEN_TERMS * sizeof(float));
            if (!nt)
                return CASCADE_ENOMEM;
            k->terms = nt;
        }
        k->cap = ncap;
    }
    k->p[k->ds->n_events] = p;
    if (k->want_terms) {
        float *t = k->terms + k->ds->n_events * CASCADE_DATAGEN_TERMS;
        for (int i = 0; i < CASCADE_DATAGEN_TERMS; i++)
            t[i] = terms ? terms[i] : 0.0f;
    }
    k->sum->by_type[type]++;
    return cascade_dataset_add_event_idx(k->ds, ts, (uint32_t)user, item, type, value);
}

/* What a user does after an impression: click, then maybe play, like,
 * collect, share, follow; or, rarely, "not interested". */
static int react(struct world *w, struct event_sink *k, int64_t ts, size_t user, uint32_t item)
{
    const struct cascade_ds_item *it = &k->ds->items[item];
    float terms[CASCADE_DATAGEN_TERMS];
    double aff, p = click_probability(w, k->ds, user, item, ts, &aff, terms);
    double q = w->quality[item], b = w->user_bias[user];
    int rc = emit(k, ts, user, item, CASCADE_EV_IMPRESSION, 0, (float)p, terms);
    if (rc)
        return rc;
    if (!cascade_rng_bernoulli(&w->rng, p)) {
        double pd = aff < log(0.05 * w->K) ? 0.03 : 0.002;
        if (cascade_rng_bernoulli(&w->rng, pd))
            rc = emit(k, ts + 2, user, item, CASCADE_EV_DISLIKE, 0, -1, NULL);
        return rc;
    }
    int64_t t = ts + 1 + (int64_t)cascade_rng_below(&w->rng, 5);
    if ((rc = emit(k, t, user, item, CASCADE_EV_CLICK, 0, -1, NULL)))
        return rc;
    if (it->media_type == 2) {
        double c = sigmoid(-0.2 + 0.5 * aff + q + 0.8 * cascade_rng_normal(&w->rng));
        double secs = round(c * it->duration_s * 10) / 10;
        secs = secs < 0.5 ? 0.5 : secs;
        if ((rc = emit(k, t + (int64_t)ceil(secs), user, item, CASCADE_EV_PLAY, (float)secs, -1,
                       NULL)))
            return rc;
    }
    static const struct {
        uint32_t type;
        double base, aff, bias;
    } follow_ups[] = {
        {CASCADE_EV_LIKE, -1.6, 0.5, 0.5},
        {CASCADE_EV_COLLECT, -2.6, 0.4, 0.3},
        {CASCADE_EV_SHARE, -3.5, 0.3, 0.3},
        {CASCADE_EV_FOLLOW, -4.0, 0.5, 0.2},
    };
    for (size_t f = 0; f < sizeof(follow_ups) / sizeof(follow_ups[0]); f++) {
        double pf =
            sigmoid(follow_ups[f].base + follow_ups[f].aff * aff + q + follow_ups[f].bias * b);
        if (cascade_rng_bernoulli(&w->rng, pf)) {
            int64_t tf = t + 2 + (int64_t)cascade_rng_below(&w->rng, 60);
            if ((rc = emit(k, tf, user, item, follow_ups[f].type, 0, -1, NULL)))
                return rc;
        }
    }
    return 0;
}

static int make_events(struct world *w, struct event_sink *k)
{
    size_t E = w->o->events;
    double span = (double)(w->end - w->start);
    double p_sum = 0;
    struct cascade_progress prog;
    if (cascade_idmap_init(&w->shown, NULL, E) != 0)
        return CASCADE_ENOMEM;
    cascade_progress_start(&prog, "datagen", "impressions", E, w->o->quiet);
    for (size_t e = 0; e < E; e++) {
        /* Stratified times keep impressions in order without a sort. */
        int64_t ts =
            w->start + (int64_t)(((double)e + cascade_rng_uniform(&w->rng)) * span / (double)E);
        size_t user = alias_sample(&w->user_pick, &w->rng);
        long item = pick_item(w, k->ds, user, ts);
        if (item < 0)
            continue;
        int rc = mark_shown(w, user, (size_t)item);
        if (rc)
            return rc;
        size_t before = k->ds->n_events;
        rc = react(w, k, ts, user, (uint32_t)item);
        if (rc)
            return rc;
        p_sum += k->p[before];
        if ((e & 0xffff) == 0)
            cascade_progress_update(&prog, e);
    }
    cascade_progress_finish(&prog, E);
    size_t imp = k->sum->by_type[CASCADE_EV_IMPRESSION];
    k->sum->mean_p_click = imp ? p_sum / (double)imp : 0;
    return 0;
}

struct ts_pos {
    int64_t ts;
    size_t pos;
};

static int cmp_ts_pos(const void *a, const void *b)
{
    const struct ts_pos *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sort events by time (stable: follow-ups stay after their impression) and
 * carry the truth arrays along. */
static int sort_with_truth(struct event_sink *k)
{
    cascade_dataset *ds = k->ds;
    size_t n = ds->n_events, T = CASCADE_DATAGEN_TERMS;
    struct cascade_ds_event *ev = malloc((n + 1) * sizeof(*ev));
    float *np = malloc((n + 1) * sizeof(float));
    float *nt = k->want_terms ? malloc((n + 1) * T * sizeof(float)) : NULL;
    struct ts_pos *order = malloc((n + 1) * sizeof(*order));
    if (!ev || !np || !order || (k->want_terms && !nt)) {
        free(ev);
        free(np);
        free(nt);
        free(order);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (struct ts_pos){ds->events[i].ts, i};
    qsort(order, n, sizeof(*order), cmp_ts_pos);
    for (size_t i = 0; i < n; i++) {
        ev[i] = ds->events[order[i].pos];
        np[i] = k->p[order[i].pos];
        if (nt)
            memcpy(nt + i * T, k->terms + order[i].pos * T, T * sizeof(float));
    }
    free(ds->events);
    free(k->p);
    free(k->terms);
    free(order);
    ds->events = ev;
    ds->cap_events = n + 1;
    k->p = np;
    k->terms = nt;
    return 0;
}

static int check_opts(const struct cascade_datagen_opts *o, char *err, size_t errlen)
{
    if (o->users == 0 || o->items == 0 || o->categories == 0 || o->authors == 0 || o->cities == 0 ||
        o->days == 0) {
        snprintf(
            err, errlen,
            "datagen: users, items, categories, authors, cities and days must all be positive");
        return CASCADE_EINVAL;
    }
    if (o->users > 50000000 || o->items > 50000000 || o->categories > 100000 ||
        (double)o->users * o->categories > 4e9) {
        snprintf(err, errlen, "datagen: world too large (users × categories must stay under 4e9)");
        return CASCADE_EINVAL;
    }
    return 0;
}

static void world_free(struct world *w)
{
    free(w->city_lat);
    free(w->city_lon);
    alias_free(&w->city_pick);
    free(w->cat_pop);
    alias_free(&w->cat_pick);
    free(w->author_primary);
    free(w->author_secondary);
    free(w->author_city);
    free(w->author_quality);
    alias_free(&w->author_pick);
    free(w->circle_theta);
    free(w->circle_city);
    free(w->circle_fav);
    free(w->theta);
    free(w->user_bias);
    free(w->user_circle);
    alias_free(&w->user_pick);
    free(w->quality);
    alias_free(&w->item_pick);
    for (uint32_t c = 0; w->cat_items && c < w->K; c++)
        alias_free(&w->cat_items[c]);
    for (uint32_t c = 0; w->cat_members && c < w->K; c++)
        free(w->cat_members[c]);
    free(w->cat_items);
    free(w->cat_members);
    free(w->cat_count);
    cascade_idmap_release(&w->shown);
}

static int64_t default_end(void)
{
    int64_t now = (int64_t)time(NULL);
    return now - now % DAY_S;
}

int cascade_datagen_generate(const struct cascade_datagen_opts *o, cascade_dataset **out,
                             float **p_click, struct cascade_datagen_summary *sum, char *err,
                             size_t errlen)
{
    return cascade_datagen_generate_terms(o, out, p_click, NULL, sum, err, errlen);
}

/* Generate into w (which the caller frees with world_free, also on error). */
static int generate_world(struct world *w, const struct cascade_datagen_opts *o,
                          cascade_dataset **out, float **p_click, float **terms,
                          struct cascade_datagen_summary *sum, char *err, size_t errlen);

int cascade_datagen_generate_terms(const struct cascade_datagen_opts *o, cascade_dataset **out,
                                   float **p_click, float **terms,
                                   struct cascade_datagen_summary *sum, char *err, size_t errlen)
{
    struct world w = {.o = o, .K = o->categories};
    int rc = generate_world(&w, o, out, p_click, terms, sum, err, errlen);
    world_free(&w);
    return rc;
}

static int generate_world(struct world *w, const struct cascade_datagen_opts *o,
                          cascade_dataset **out, float **p_click, float **terms,
                          struct cascade_datagen_summary *sum, char *err, size_t errlen)
{
    struct cascade_datagen_summary local;
    struct event_sink sink = {.want_terms = terms != NULL};
    int rc = check_opts(o, err, errlen);
    *out = NULL;
    if (rc)
        return rc;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof(*sum));
    sink.sum = sum;
    sink.ds = cascade_dataset_create();
    if (!sink.ds) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    cascade_rng_seed(&w->rng, o->seed);
    w->end = o->end_ts ? o->end_ts : default_end();
    w->start = w->end - (int64_t)o->days * DAY_S;
    if ((rc = make_geography(w)) || (rc = make_categories_and_authors(w)) ||
        (rc = make_circles(w)) || (rc = make_users(w, sink.ds)) || (rc = make_items(w, sink.ds)) ||
        (rc = make_events(w, &sink)) || (rc = sort_with_truth(&sink)))
        goto out;
    sum->users = sink.ds->n_users;
    sum->items = sink.ds->n_items;
    sum->events = sink.ds->n_events;
    sum->circles = w->n_circles;
    sum->start_ts = w->start;
    sum->end_ts = w->end;
    size_t imp = sum->by_type[CASCADE_EV_IMPRESSION];
    sum->ctr = imp ? (double)sum->by_type[CASCADE_EV_CLICK] / (double)imp : 0;
    *out = sink.ds;
    sink.ds = NULL;
    if (p_click) {
        *p_click = sink.p;
        sink.p = NULL;
    }
    if (terms) {
        *terms = sink.terms;
        sink.terms = NULL;
    }
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "datagen: out of memory");
    cascade_dataset_destroy(sink.ds);
    free(sink.p);
    free(sink.terms);
    return rc;
}

/* The click model's parameters (docs/data.md, "truth_users.tsv"): per user
 * the propensity b_u, the circle's favourite items (comma-separated ids, "-"
 * outside circles) and θ_u (K comma-separated values); per item the quality
 * q_i. Cities, categories and creation times are in users/items.tsv. */
struct truth_model {
    const struct world *w;
    const cascade_dataset *ds;
};

static void write_truth_users(FILE *f, const void *ctx)
{
    const struct truth_model *t = ctx;
    const struct world *w = t->w;
    fprintf(f, "user_id\tuser_bias\tcircle_favourites\ttheta\n");
    for (size_t u = 0; u < t->ds->n_users; u++) {
        int32_t c = w->user_circle[u];
        fprintf(f, "%s\t%.6f\t", t->ds->users[u].id, w->user_bias[u]);
        for (int k = 0; k < CIRCLE_FAVOURITES && c >= 0; k++)
            fprintf(f, "%s%" PRIu64, k ? "," : "",
                    t->ds->items[w->circle_fav[(size_t)c * CIRCLE_FAVOURITES + k]].id);
        fputs(c >= 0 ? "\t" : "-\t", f);
        for (uint32_t k = 0; k < w->K; k++)
            fprintf(f, "%s%.6g", k ? "," : "", (double)w->theta[u * w->K + k]);
        fputc('\n', f);
    }
}

static void write_truth_items(FILE *f, const void *ctx)
{
    const struct truth_model *t = ctx;
    fprintf(f, "item_id\tquality\n");
    for (size_t i = 0; i < t->ds->n_items; i++)
        fprintf(f, "%" PRIu64 "\t%.6f\n", t->ds->items[i].id, t->w->quality[i]);
}

static int write_truth_model(const struct world *w, const cascade_dataset *ds, const char *dir,
                             char *err, size_t errlen)
{
    struct truth_model t = {w, ds};
    int rc = cascade_dataset__write_tsv(dir, "truth_users.tsv", write_truth_users, &t, err, errlen);
    if (rc == 0)
        rc = cascade_dataset__write_tsv(dir, "truth_items.tsv", write_truth_items, &t, err, errlen);
    return rc;
}

/* The ground truth without the log: the world is drawn in the same order as
 * by cascade_datagen_generate, so the same options give the same users,
 * items and click model. */
struct cascade_datagen_truth {
    struct cascade_datagen_opts o;
    struct world w;
    cascade_dataset *ds;
};

cascade_datagen_truth *cascade_datagen_truth_create(const struct cascade_datagen_opts *o, char *err,
                                                    size_t errlen)
{
    cascade_datagen_truth *t = calloc(1, sizeof(*t));
    int rc = t ? check_opts(o, err, errlen) : CASCADE_ENOMEM;
    if (rc)
        goto out;
    t->o = *o;
    t->w.o = &t->o;
    t->w.K = o->categories;
    t->ds = cascade_dataset_create();
    if (!t->ds) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    cascade_rng_seed(&t->w.rng, o->seed);
    t->w.end = o->end_ts ? o->end_ts : default_end();
    t->w.start = t->w.end - (int64_t)o->days * DAY_S;
    if ((rc = make_geography(&t->w)) || (rc = make_categories_and_authors(&t->w)) ||
        (rc = make_circles(&t->w)) || (rc = make_users(&t->w, t->ds)) ||
        (rc = make_items(&t->w, t->ds)))
        goto out;
out:
    if (rc) {
        if (rc == CASCADE_ENOMEM)
            snprintf(err, errlen, "datagen: out of memory");
        cascade_datagen_truth_destroy(t);
        return NULL;
    }
    return t;
}

void cascade_datagen_truth_destroy(cascade_datagen_truth *t)
{
    if (!t)
        return;
    world_free(&t->w);
    cascade_dataset_destroy(t->ds);
    free(t);
}

const cascade_dataset *cascade_datagen_truth_dataset(const cascade_datagen_truth *t)
{
    return t->ds;
}

double cascade_datagen_truth_p_click(const cascade_datagen_truth *t, size_t user, size_t item,
                                     int64_t ts)
{
    double aff;
    float terms[CASCADE_DATAGEN_TERMS];
    return click_probability(&t->w, t->ds, user, (uint32_t)item, ts, &aff, terms);
}

static int write_truth(const cascade_dataset *ds, const float *p, const float *terms,
                       const char *dir, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/truth.tsv", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return CASCADE_EIO;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    fprintf(f, "ts\tuser_id\titem_id\tp_click%s\n",
            terms ? "\ttheta\tquality\tuser_bias\tfreshness\tsame_city\tcircle_favourite" : "");
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        if (e->type != CASCADE_EV_IMPRESSION)
            continue;
        fprintf(f, "%" PRId64 "\t%s\t%" PRIu64 "\t%.6f", e->ts, ds->users[e->user].id,
                ds->items[e->item].id, (double)p[i]);
        for (int t = 0; terms && t < CASCADE_DATAGEN_TERMS; t++)
            fprintf(f, "\t%.6f", (double)terms[i * CASCADE_DATAGEN_TERMS + t]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return CASCADE_EIO;
    }
    return 0;
}

int cascade_datagen_run(const struct cascade_datagen_opts *o, const char *out_dir,
                        struct cascade_datagen_summary *sum, char *err, size_t errlen)
{
    cascade_dataset *ds = NULL;
    float *p = NULL, *terms = NULL;
    bool want_terms = o->truth && o->truth_terms;
    int64_t t0_us;
    t0_us = cascade_now_us();
    struct world w = {.o = o, .K = o->categories};
    int rc = cascade_mkdir_p(out_dir, err, errlen);
    if (rc == 0)
        rc = generate_world(&w, o, &ds, &p, want_terms ? &terms : NULL, sum, err, errlen);
    if (rc == 0)
        rc = cascade_dataset_write(ds, out_dir, err, errlen);
    if (rc == 0 && o->truth)
        rc = write_truth(ds, p, terms, out_dir, err, errlen);
    if (rc == 0 && o->truth_model)
        rc = write_truth_model(&w, ds, out_dir, err, errlen);
    world_free(&w);
    if (sum)
        sum->seconds = (double)(cascade_now_us() - t0_us) / 1e6;
    cascade_dataset_destroy(ds);
    free(p);
    free(terms);
    return rc;
}
