/* Negative sampler: Vose's alias table over (clicks + smoothing)^power for
 * O(1) easy draws, uniform hard draws from ranker rejects, and rejection of
 * excluded items (exposed-but-unclicked, positives) for both. */
#include "negsample.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

struct cascade_negsample {
    struct cascade_negsample_config cfg;
    size_t n;
    double *q;       /* [n] easy sampling probability */
    double *share;   /* [n] click share c / Σc (in-batch appearance) */
    double *prob;    /* [n] alias table: keep column i with this probability */
    uint32_t *alias; /* [n] otherwise take alias[i] */
};

void cascade_negsample_config_default(struct cascade_negsample_config *c)
{
    c->power = 0.75;
    c->smoothing = 0.0;
    c->hard_ratio = 0.0;
    c->max_tries = 64;
}

static int config_check(const struct cascade_negsample_config *c, size_t n_items, char *err,
                        size_t errlen)
{
    if (n_items == 0 || n_items > UINT32_MAX) {
        snprintf(err, errlen, "negsample: need 1..%u items, got %zu", UINT32_MAX, n_items);
        return CASCADE_EINVAL;
    }
    if (!(c->power >= 0.0 && c->power <= 4.0) || !(c->smoothing >= 0.0) ||
        !(c->hard_ratio >= 0.0 && c->hard_ratio <= 1.0) || c->max_tries == 0) {
        snprintf(err, errlen,
                 "negsample: config out of range (power %g in [0,4], smoothing %g >= 0, "
                 "hard_ratio %g in [0,1], max_tries %u >= 1)",
                 c->power, c->smoothing, c->hard_ratio, c->max_tries);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* Vose's method: columns of height q·n split into a kept part and an alias. */
static int alias_build(struct cascade_negsample *s)
{
    size_t n = s->n, ns = 0, nl = 0;
    uint32_t *small = malloc(n * sizeof(uint32_t)), *large = malloc(n * sizeof(uint32_t));
    double *scaled = malloc(n * sizeof(double));
    int rc = 0;
    if (!small || !large || !scaled) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        scaled[i] = s->q[i] * (double)n;
        if (scaled[i] < 1.0)
            small[ns++] = (uint32_t)i;
        else
            large[nl++] = (uint32_t)i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t l = small[--ns], g = large[--nl];
        s->prob[l] = scaled[l];
        s->alias[l] = g;
        scaled[g] = (scaled[g] + scaled[l]) - 1.0;
        if (scaled[g] < 1.0)
            small[ns++] = g;
        else
            large[nl++] = g;
    }
    /* What is left has height 1 up to rounding. */
    while (nl > 0) {
        uint32_t g = large[--nl];
        s->prob[g] = 1.0;
        s->alias[g] = g;
    }
    while (ns > 0) {
        uint32_t l = small[--ns];
        s->prob[l] = 1.0;
        s->alias[l] = l;
    }
out:
    free(small);
    free(large);
    free(scaled);
    return rc;
}

int cascade_negsample_create(const double *clicks, size_t n_items,
                             const struct cascade_negsample_config *cfg, cascade_negsample **out,
                             char *err, size_t errlen)
{
    cascade_negsample *s = NULL;
    double z = 0.0, total = 0.0;
    int rc;
    *out = NULL;
    rc = config_check(cfg, n_items, err, errlen);
    if (rc)
        goto out;
    for (size_t i = 0; i < n_items; i++) {
        if (!(clicks[i] >= 0.0) || !isfinite(clicks[i])) {
            snprintf(err, errlen, "negsample: item %zu has click count %g; counts must be >= 0", i,
                     clicks[i]);
            rc = CASCADE_EINVAL;
            goto out;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s) {
        s->q = malloc(n_items * sizeof(double));
        s->share = malloc(n_items * sizeof(double));
        s->prob = malloc(n_items * sizeof(double));
        s->alias = malloc(n_items * sizeof(uint32_t));
    }
    if (!s || !s->q || !s->share || !s->prob || !s->alias) {
        rc = CASCADE_ENOMEM;
        snprintf(err, errlen, "negsample: out of memory for %zu items", n_items);
        goto out;
    }
    s->cfg = *cfg;
    s->n = n_items;
    for (size_t i = 0; i < n_items; i++) {
        double w = clicks[i] + cfg->smoothing;
        s->q[i] = w > 0.0 ? pow(w, cfg->power) : 0.0;
        z += s->q[i];
        total += clicks[i];
    }
    if (!(z > 0.0)) {
        snprintf(err, errlen, "negsample: every item has weight 0 (no clicks and no smoothing)");
        rc = CASCADE_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n_items; i++) {
        s->q[i] /= z;
        s->share[i] = total > 0.0 ? clicks[i] / total : 0.0;
    }
    rc = alias_build(s);
    if (rc) {
        snprintf(err, errlen, "negsample: out of memory building the alias table");
        goto out;
    }
    *out = s;
    s = NULL;
out:
    cascade_negsample_destroy(s);
    return rc;
}

void cascade_negsample_destroy(cascade_negsample *s)
{
    if (!s)
        return;
    free(s->q);
    free(s->share);
    free(s->prob);
    free(s->alias);
    free(s);
}

size_t cascade_negsample_count(const cascade_negsample *s)
{
    return s->n;
}

double cascade_negsample_prob(const cascade_negsample *s, uint32_t item)
{
    return item < s->n ? s->q[item] : 0.0;
}

double cascade_negsample_logq(const cascade_negsample *s, uint32_t item)
{
    return log(cascade_negsample_prob(s, item));
}

double cascade_negsample_logq_inbatch(const cascade_negsample *s, uint32_t item)
{
    return log(item < s->n ? s->share[item] : 0.0);
}

void cascade_negsample_alias_column(const cascade_negsample *s, uint32_t i, double *keep,
                                    uint32_t *alias)
{
    *keep = s->prob[i];
    *alias = s->alias[i];
}

uint32_t cascade_negsample_easy(const cascade_negsample *s, struct cascade_rng *rng)
{
    uint32_t i = (uint32_t)cascade_rng_below(rng, s->n);
    return cascade_rng_uniform(rng) < s->prob[i] ? i : s->alias[i];
}

static bool excluded(const struct cascade_negsample_request *req, uint32_t item)
{
    for (size_t i = 0; i < req->n_exclude; i++)
        if (req->exclude[i] == item)
            return true;
    return false;
}

/* Up to want hard negatives, uniformly without replacement from the eligible
 * (in range, not excluded, first occurrence) candidates. */
static size_t draw_hard(const cascade_negsample *s, struct cascade_rng *rng,
                        const struct cascade_negsample_request *req, size_t want, uint32_t *out,
                        size_t *n_eligible)
{
    uint32_t *pool = malloc((req->n_hard + 1) * sizeof(uint32_t));
    size_t n = 0, got = 0;
    *n_eligible = 0;
    if (!pool)
        return 0;
    for (size_t i = 0; i < req->n_hard; i++) {
        uint32_t it = req->hard[i];
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = pool[j] == it;
        if (it < s->n && !dup && !excluded(req, it))
            pool[n++] = it;
    }
    /* Partial Fisher-Yates: the first `got` slots become the sample. */
    for (; got < want && got < n; got++) {
        size_t j = got + (size_t)cascade_rng_below(rng, n - got);
        uint32_t t = pool[got];
        pool[got] = pool[j];
        pool[j] = t;
        out[got] = pool[got];
    }
    *n_eligible = n;
    free(pool);
    return got;
}

size_t cascade_negsample_draw(const cascade_negsample *s, struct cascade_rng *rng,
                              const struct cascade_negsample_request *req, size_t k, uint32_t *out,
                              enum cascade_negsample_kind *kind, float *logq)
{
    size_t want_hard = (size_t)floor((double)k * s->cfg.hard_ratio + 0.5), n_eligible = 0;
    size_t got = draw_hard(s, rng, req, want_hard, out, &n_eligible);
    for (size_t i = 0; i < got; i++) {
        if (kind)
            kind[i] = CASCADE_NEGSAMPLE_HARD;
        if (logq)
            logq[i] = (float)log((double)got / (double)n_eligible);
    }
    while (got < k) {
        uint32_t it = 0;
        unsigned tries = 0;
        bool ok = false;
        while (!ok && tries++ < s->cfg.max_tries) {
            it = cascade_negsample_easy(s, rng);
            ok = !excluded(req, it);
        }
        if (!ok)
            break;
        out[got] = it;
        if (kind)
            kind[got] = CASCADE_NEGSAMPLE_EASY;
        if (logq)
            logq[got] = (float)log(s->q[it]);
        got++;
    }
    return got;
}
