/* Request checks shared by the stages and the orchestrator, and the
 * deterministic candidate sort (score desc, item id asc, input position). */
#include "request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

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
    return 0;
}

int cascade_request_check_user(const Cascade__V1__UserContext *user, char *err, size_t errlen)
{
    int rc =
        cascade_request_check_user_id("user.user_id", user ? user->user_id : NULL, err, errlen);
    if (rc != 0)
        return rc;
    if (user->request_time_s < 0) {
        snprintf(err, errlen, "user.request_time_s %lld is negative",
                 (long long)user->request_time_s);
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
    for (size_t i = 0; i < n; i++)
        if (!candidates[i]) {
            snprintf(err, errlen, "candidates[%zu] is missing", i);
            return CASCADE_EINVAL;
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

int cascade_request_sort_candidates(Cascade__V1__Candidate **c, size_t n,
                                    enum cascade_score_kind by, cascade_arena *arena)
{
    struct sort_key *k = cascade_arena_calloc(arena, n + 1, sizeof *k);
    if (!k)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        float s = cascade_request_candidate_score(c[i], by);
        /* NaN compares unequal to everything; rank it below every number so
         * the comparison stays a total order. */
        k[i] = (struct sort_key){isnan(s) ? -INFINITY : s, c[i]->item_id, i, c[i]};
    }
    qsort(k, n, sizeof *k, sort_key_cmp);
    for (size_t i = 0; i < n; i++)
        c[i] = k[i].cand;
    return 0;
}
