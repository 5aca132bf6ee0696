/* Negative sampling for two-tower retrieval (SPEC §5): easy negatives drawn
 * ∝ clicks^power with Walker's alias method, the sampling probability q for
 * the logQ correction, hard negatives (ranker rejects) mixed in by a ratio,
 * and an exclusion list so exposed-but-unclicked items are never negatives. */
#ifndef CASCADE_NEGSAMPLE_H
#define CASCADE_NEGSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

struct cascade_negsample_config {
    double power;       /* exponent on click counts (0.75) */
    double smoothing;   /* added to every count before the power (0: unclicked items are never easy
                           negatives) */
    double hard_ratio;  /* fraction of each draw taken from the hard candidates, in [0, 1] */
    unsigned max_tries; /* rejection attempts per negative before giving up (64) */
};

/* power 0.75, smoothing 0, hard_ratio 0, max_tries 64. */
void cascade_negsample_config_default(struct cascade_negsample_config *c);

typedef struct cascade_negsample cascade_negsample;

/* Build the sampler over items 0..n_items-1 from their click counts (copied).
 * 0, or CASCADE_EINVAL (no items, a negative or non-finite count, every
 * weight zero, power/ratio out of range) / CASCADE_ENOMEM with err.
 * Read-only after creation: draws from many threads are safe, each with its
 * own rng. */
int cascade_negsample_create(const double *clicks, size_t n_items,
                             const struct cascade_negsample_config *cfg, cascade_negsample **out,
                             char *err, size_t errlen);
/* Free the sampler. NULL is a no-op. */
void cascade_negsample_destroy(cascade_negsample *s);

/* Number of items. */
size_t cascade_negsample_count(const cascade_negsample *s);
/* q(item): the easy sampler's probability (c+smoothing)^power / Z; 0 past the end. */
double cascade_negsample_prob(const cascade_negsample *s, uint32_t item);
/* log q(item) of the easy sampler, for the logQ correction of sampled negatives. */
double cascade_negsample_logq(const cascade_negsample *s, uint32_t item);
/* log of the item's share of clicks c/Σc: its probability of appearing as a
 * positive, i.e. the logQ correction of in-batch negatives. */
double cascade_negsample_logq_inbatch(const cascade_negsample *s, uint32_t item);

/* Column i of the alias table: a uniform column i is kept with probability
 * *keep, else *alias is drawn (for tests and debugging). */
void cascade_negsample_alias_column(const cascade_negsample *s, uint32_t i, double *keep,
                                    uint32_t *alias);

/* One easy draw from the alias table (no exclusions). */
uint32_t cascade_negsample_easy(const cascade_negsample *s, struct cascade_rng *rng);

/* Where a negative came from. */
enum cascade_negsample_kind {
    CASCADE_NEGSAMPLE_EASY = 1,
    CASCADE_NEGSAMPLE_HARD = 2,
};

/* What one user's negatives must avoid and may draw from (all borrowed). */
struct cascade_negsample_request {
    const uint32_t *exclude; /* the user's positives and exposed-but-unclicked items */
    size_t n_exclude;
    const uint32_t *hard; /* items the ranker scored but cut (candidates) */
    size_t n_hard;
};

/* Draw up to k negatives into out[k] (with kind[k] and logq[k], either may be
 * NULL): round(k·hard_ratio) hard ones chosen uniformly without replacement
 * from the non-excluded hard candidates (fewer if there are fewer), the rest
 * easy ones from the alias table. No drawn item is ever in exclude (checked
 * for hard and easy alike). logq is log q for easy draws and log(h/H) for hard
 * ones (h drawn out of H candidates: each candidate's inclusion probability).
 * Returns the number drawn (< k only when rejection ran out of tries). */
size_t cascade_negsample_draw(const cascade_negsample *s, struct cascade_rng *rng,
                              const struct cascade_negsample_request *req, size_t k, uint32_t *out,
                              enum cascade_negsample_kind *kind, float *logq);

#endif
