/* New-item boosting with an impression target: the schedule, the weight,
 * the per-user order of the exploration picks and the Redis reads behind
 * them (boost.h). */
#include "boost.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

/* The item's age within its window, in [0, window]. */
static double age_in_window(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s)
{
    if (created_s <= 0 || now_s <= created_s)
        return 0.0;
    int64_t age = now_s - created_s;
    return (double)(age < p->window_s ? age : p->window_s);
}

double cascade_boost_deficit(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                             double impressions)
{
    if (p->target == 0 || p->window_s <= 0)
        return 0.0;
    double due = (double)p->target * age_in_window(p, created_s, now_s) / (double)p->window_s;
    return due > impressions ? due - impressions : 0.0;
}

double cascade_boost_weight(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                            double impressions)
{
    if (p->target == 0 || p->window_s <= 0)
        return 1.0;
    if (impressions >= (double)p->target)
        return 0.0; /* target met: never boosted again */
    if (created_s > 0 && now_s - created_s >= p->window_s)
        return 0.0; /* its window is over */
    return 1.0 + cascade_boost_deficit(p, created_s, now_s, impressions);
}

bool cascade_boost_behind(const struct cascade_boost_params *p, int64_t created_s, int64_t now_s,
                          double impressions)
{
    return cascade_boost_weight(p, created_s, now_s, impressions) > 0.0 &&
           cascade_boost_deficit(p, created_s, now_s, impressions) >= 1.0;
}

void cascade_boost_order(Cascade__V1__Candidate **picks, uint32_t *pos, double *w, size_t n)
{
    /* Insertion sort: stable, and n is the exploration pool (tens). */
    for (size_t i = 1; i < n; i++) {
        Cascade__V1__Candidate *c = picks[i];
        uint32_t p = pos[i];
        double wi = w[i], key = wi / (1.0 + (double)p);
        size_t j = i;
        while (j > 0 && w[j - 1] / (1.0 + (double)pos[j - 1]) < key) {
            picks[j] = picks[j - 1];
            pos[j] = pos[j - 1];
            w[j] = w[j - 1];
            j--;
        }
        picks[j] = c;
        pos[j] = p;
        w[j] = wi;
    }
}

/* Whether item_id is among c[0..n). */
static bool holds(Cascade__V1__Candidate *const *c, size_t n, uint64_t item_id)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] && c[i]->item_id == item_id)
            return true;
    return false;
}

long cascade_boost_guarantee(Cascade__V1__Candidate *const *pool, const double *w, size_t n_pool,
                             Cascade__V1__Candidate *const *picks, size_t n_picks,
                             Cascade__V1__Candidate *const *ranked, size_t n_ranked,
                             double min_deficit, uint32_t *pos)
{
    long best = -1;
    double best_key = 0.0;
    uint32_t best_pos = 0;
    if (!(min_deficit > 0.0))
        return -1;
    for (size_t i = 0; i < n_pool; i++) {
        if (!pool[i] || w[i] < 1.0 + min_deficit || holds(picks, n_picks, pool[i]->item_id))
            continue;
        uint32_t p = (uint32_t)n_ranked; /* not returned: below every ranked item */
        for (size_t r = 0; r < n_ranked; r++)
            if (ranked[r] && ranked[r]->item_id == pool[i]->item_id) {
                p = (uint32_t)r;
                break;
            }
        double key = w[i] / (1.0 + (double)p);
        if (best < 0 || key > best_key) {
            best = (long)i;
            best_key = key;
            best_pos = p;
        }
    }
    if (best >= 0 && pos)
        *pos = best_pos;
    return best;
}

size_t cascade_boost_insert(Cascade__V1__Candidate **picks, uint32_t *pos, double *w, size_t n,
                            Cascade__V1__Candidate *c, uint32_t c_pos, double c_w)
{
    size_t k = n;
    if (n == 0 || c_w > w[0]) {
        memmove(picks + 1, picks, n * sizeof *picks);
        memmove(pos + 1, pos, n * sizeof *pos);
        memmove(w + 1, w, n * sizeof *w);
        k = 0;
    }
    picks[k] = c;
    pos[k] = c_pos;
    w[k] = c_w;
    return n + 1;
}

/* HGET {ns}:ictr:{id} impression for ids[0..n), pipelined. */
static int read_impressions(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                            double *impressions)
{
    char key[CASCADE_KEY_MAX];
    size_t queued = 0;
    int rc = 0;
    for (; queued < n && rc == 0; queued++)
        rc = cascade_redis_append(r, "HGET %s impression",
                                  cascade_key_item_counters(key, ns, ids[queued]));
    if (rc)
        queued--; /* the failed one was not queued */
    for (size_t i = 0; i < queued; i++) {
        redisReply *rep = NULL;
        int got = cascade_redis_get_reply(r, &rep);
        if (got && rc == 0)
            rc = got;
        impressions[i] = rep && rep->type == REDIS_REPLY_STRING ? strtod(rep->str, NULL) : 0.0;
        if (rep)
            freeReplyObject(rep);
    }
    return rc;
}

int cascade_boost_read(cascade_redis *r, const char *ns, const uint64_t *ids, size_t n,
                       int64_t *created_s, double *impressions)
{
    cascade_v1_ItemRecord *recs = calloc(n + 1, sizeof *recs);
    bool *found = calloc(n + 1, sizeof *found);
    int rc = CASCADE_ENOMEM;
    if (!recs || !found) {
        cascade_redis__set_error(r, "boost: out of memory for %zu items", n);
        goto out;
    }
    if ((rc = cascade_store_get_items(r, ns, ids, n, recs, found)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        created_s[i] = found[i] ? recs[i].created_at_s : 0;
    rc = read_impressions(r, ns, ids, n, impressions);
out:
    free(recs);
    free(found);
    return rc;
}

int cascade_boost_census(cascade_redis *r, const char *ns, const struct cascade_boost_params *p,
                         int64_t now_s, size_t max, size_t *behind, size_t *met)
{
    char key[CASCADE_KEY_MAX];
    int64_t gen = 0;
    size_t n = 0;
    uint64_t *ids = calloc(max + 1, sizeof *ids);
    double *created = calloc(max + 1, sizeof *created);
    double *imps = calloc(max + 1, sizeof *imps);
    int rc = CASCADE_ENOMEM;
    *behind = *met = 0;
    if (!ids || !created || !imps) {
        cascade_redis__set_error(r, "boost: out of memory for %zu items", max);
        goto out;
    }
    if ((rc = cascade_store_get_generation(r, ns, "new", &gen)) != 0 || gen == 0)
        goto out;
    cascade_key_artefact(key, ns, "new", gen, NULL);
    if ((rc = cascade_store_top_items(r, key, max, ids, created, &n)) != 0 ||
        (rc = read_impressions(r, ns, ids, n, imps)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int64_t c = (int64_t)created[i];
        if (c > 0 && now_s - c >= p->window_s)
            continue;
        if (imps[i] >= (double)p->target)
            (*met)++;
        else if (cascade_boost_behind(p, c, now_s, imps[i]))
            (*behind)++;
    }
out:
    free(ids);
    free(created);
    free(imps);
    return rc;
}
