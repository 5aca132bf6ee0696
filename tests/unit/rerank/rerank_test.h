/* Shared by the ReRank tests: a request over candidates 100, 101, ... with
 * the given rank scores, categories and authors (attrs filled). Include
 * after <cmocka.h>. */
#ifndef CASCADE_TESTS_RERANK_TEST_H
#define CASCADE_TESTS_RERANK_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/rerank.pb-c.h"
#include "messages.h"

static inline Cascade__V1__ReRankRequest *rerank_test_request(cascade_arena *a, uint32_t count,
                                                              const float *scores,
                                                              const uint32_t *cats,
                                                              const uint64_t *authors, size_t n)
{
    Cascade__V1__ReRankRequest *req = cascade_arena_alloc(a, sizeof *req);
    uint64_t *ids = cascade_arena_calloc(a, n + 1, sizeof *ids);
    assert_non_null(req);
    assert_non_null(ids);
    cascade__v1__re_rank_request__init(req);
    for (size_t i = 0; i < n; i++)
        ids[i] = 100 + i;
    req->user = test_user_context(a, "u", 0);
    req->count = count;
    req->n_candidates = n;
    req->candidates = test_candidates(a, ids, n);
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__Candidate *c = req->candidates[i];
        c->rank_score = scores[i];
        c->attrs = cascade_arena_alloc(a, sizeof *c->attrs);
        assert_non_null(c->attrs);
        cascade__v1__item_attributes__init(c->attrs);
        c->attrs->category = cats[i];
        c->attrs->author_id = authors[i];
    }
    return req;
}

#endif
