/* Feature parity between the learned rankers' trainer and the services: the
 * replay computes each candidate's features from the records of its
 * namespace; the Rank and PreRank services compute them again from what
 * they read (user record, item records through their item cache, the
 * candidate's channel hits, the request time). A model trained on the
 * replay must score every replayed candidate identically through the real
 * stage code (cascade_rank_run, cascade_prerank_run) and through the model
 * on the replay's own feature row: any difference in any feature that the
 * trees split on changes some score. The same again with the candidates'
 * hits sent as RecallSignals columns instead of their channels, and with the
 * pre-rank's and the ranker's candidates themselves as item_ids +
 * recall_scores columns (what the orchestrator sends): the same ids in the
 * same order with the same scores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../eval/eval_world.h"
#include "arena.h"
#include "clock.h"
#include "gbdt.h"
#include "latest_file.h"
#include "ltr_features.h"
#include "ltr_test.h"
#include "ltr_replay.h"
#include "ltr_train.h"
#include "prerank.h"
#include "rank.h"

#define NS "ltr-parity"

/* Candidate of replay row r: its channel hits and recall score as the
 * features recorded them (raw scores are not features and stay 0). */
static Cascade__V1__Candidate *candidate_of(cascade_arena *a, const struct cascade_ltr_lists *l,
                                            size_t r)
{
    const float *x = l->X + r * CASCADE_LTR_FEATURES;
    Cascade__V1__Candidate *c = cascade_arena_alloc(a, sizeof *c);
    Cascade__V1__ChannelHit **hits = cascade_arena_calloc(a, CASCADE_LTR_CHANNELS, sizeof *hits);
    assert_non_null(c);
    assert_non_null(hits);
    cascade__v1__candidate__init(c);
    c->item_id = l->item[r];
    c->recall_score = x[CASCADE_LTR_RECALL_SCORE];
    c->channels = hits;
    for (size_t k = 0; k < CASCADE_LTR_CHANNELS; k++) {
        float norm = x[CASCADE_RANK_FEATURES + 2 * k], lrank = x[CASCADE_RANK_FEATURES + 2 * k + 1];
        if (isnan(norm))
            continue;
        Cascade__V1__ChannelHit *h = cascade_arena_alloc(a, sizeof *h);
        assert_non_null(h);
        cascade__v1__channel_hit__init(h);
        h->channel = (char *)cascade_ltr_channel_name(k);
        h->norm_score = norm;
        h->rank = (uint32_t)lround(exp2((double)lrank) - 2.0);
        hits[c->n_channels++] = h;
    }
    return c;
}

/* The hits of cands[0..n) as RecallSignals columns, the channels taken off
 * the candidates (as the orchestrator sends them). The name table lists the
 * channels in reverse order of first use, so an index is never the channel's
 * LTR slot by accident. */
static Cascade__V1__RecallSignals *to_columns(cascade_arena *a, Cascade__V1__Candidate **cands,
                                              size_t n)
{
    Cascade__V1__RecallSignals *sig = cascade_arena_alloc(a, sizeof *sig);
    size_t total = 0;
    assert_non_null(sig);
    cascade__v1__recall_signals__init(sig);
    for (size_t i = 0; i < n; i++)
        total += cands[i]->n_channels;
    sig->channels = cascade_arena_calloc(a, CASCADE_LTR_CHANNELS, sizeof *sig->channels);
    sig->hit_count = cascade_arena_calloc(a, n + 1, sizeof *sig->hit_count);
    sig->hit_channel = cascade_arena_calloc(a, total + 1, sizeof *sig->hit_channel);
    sig->hit_norm_score = cascade_arena_calloc(a, total + 1, sizeof *sig->hit_norm_score);
    sig->hit_rank = cascade_arena_calloc(a, total + 1, sizeof *sig->hit_rank);
    for (size_t k = 0; k < CASCADE_LTR_CHANNELS; k++)
        sig->channels[k] = (char *)cascade_ltr_channel_name(CASCADE_LTR_CHANNELS - 1 - k);
    sig->n_channels = CASCADE_LTR_CHANNELS;
    for (size_t i = 0; i < n; i++) {
        for (size_t h = 0; h < cands[i]->n_channels; h++) {
            const Cascade__V1__ChannelHit *hit = cands[i]->channels[h];
            size_t k = 0;
            while (strcmp(sig->channels[k], hit->channel) != 0)
                k++;
            sig->hit_channel[sig->n_hit_channel++] = (uint32_t)k;
            sig->hit_norm_score[sig->n_hit_norm_score++] = hit->norm_score;
            sig->hit_rank[sig->n_hit_rank++] = hit->rank;
        }
        sig->hit_count[sig->n_hit_count++] = (uint32_t)cands[i]->n_channels;
        cands[i]->n_channels = 0;
        cands[i]->channels = NULL;
    }
    return sig;
}

static void test_services_compute_the_trainers_features(void **state)
{
    struct world *w = *state;
    cascade_config *cfg = ltr_test_config();
    struct cascade_ltr_train_opts o;
    struct cascade_ltr_train_summary sum;
    struct cascade_ltr_lists l;
    char dir[256], err[512] = "";
    test_tempdir(dir, sizeof dir);
    /* A real model on the world, published whatever it scores. */
    cascade_ltr_train_defaults(&o);
    o.replay.cfg = cfg;
    o.replay.ns = NS;
    o.replay.quiet = true;
    o.replay.seed = 3;
    o.model_dir = dir;
    o.force = true;
    o.margin_scale = 0; /* trees only: every score comes from the features */
    o.prerank.rounds = o.rank.rounds = 30;
    o.prerank.patience = o.rank.patience = 30;
    o.prerank.threads = o.rank.threads = 1;
    assert_int_equal(
        cascade_ltr_train_run(w->ds, w->redis.conn, w->redis.pool, &o, &sum, err, sizeof err), 0);
    assert_true(sum.rank_published && sum.prerank_published);
    /* The replay again (same seed: the same namespace contents and rows). */
    assert_int_equal(
        cascade_ltr_replay_run(w->ds, w->redis.conn, w->redis.pool, &o.replay, &l, err, sizeof err),
        0);
    char name[256], path[1024];
    cascade_gbdt *rank_model = NULL, *pre_model = NULL;
    assert_int_equal(cascade_latest_current(dir, CASCADE_RANK_LTR_LATEST_FILE, name, sizeof name,
                                            path, sizeof path, err, sizeof err),
                     0);
    assert_int_equal(cascade_ltr_model_load(path, &rank_model, err, sizeof err), 0);
    assert_int_equal(cascade_latest_current(dir, CASCADE_PRERANK_LTR_LATEST_FILE, name, sizeof name,
                                            path, sizeof path, err, sizeof err),
                     0);
    assert_int_equal(cascade_ltr_model_load(path, &pre_model, err, sizeof err), 0);
    cascade_rank *rank = cascade_rank_create(cfg, w->redis.pool, NS, dir, NULL, err, sizeof err);
    cascade_prerank *pre =
        cascade_prerank_create(cfg, w->redis.pool, NS, dir, NULL, err, sizeof err);
    assert_non_null(rank);
    assert_non_null(pre);
    assert_non_null(strstr(cascade_rank_model_version(rank, name, sizeof name), "rank-ltr"));
    cascade_arena *a = cascade_arena_create(1 << 16);
    size_t compared = 0, distinct = 0;
    for (size_t g = 0; g < l.n_groups && g < 40; g++) {
        size_t n = l.off[g + 1] - l.off[g];
        cascade_arena_reset(a);
        Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
        user.user_id = w->ds->users[l.user[g]].id;
        user.request_time_s = l.as_of;
        Cascade__V1__Candidate **cands = cascade_arena_calloc(a, n, sizeof *cands);
        Cascade__V1__Candidate **pcands = cascade_arena_calloc(a, n, sizeof *pcands);
        Cascade__V1__Candidate **ccands = cascade_arena_calloc(a, n, sizeof *ccands);
        Cascade__V1__Candidate **cpcands = cascade_arena_calloc(a, n, sizeof *cpcands);
        float *want = cascade_arena_calloc(a, n, sizeof *want);
        float *pwant = cascade_arena_calloc(a, n, sizeof *pwant);
        for (size_t i = 0; i < n; i++) {
            cands[i] = candidate_of(a, &l, l.off[g] + i);
            pcands[i] = candidate_of(a, &l, l.off[g] + i);
            ccands[i] = candidate_of(a, &l, l.off[g] + i);
            cpcands[i] = candidate_of(a, &l, l.off[g] + i);
        }
        cascade_gbdt_predict(rank_model, l.X + l.off[g] * CASCADE_LTR_FEATURES, n, want);
        cascade_gbdt_predict(pre_model, l.X + l.off[g] * CASCADE_LTR_FEATURES, n, pwant);
        Cascade__V1__RankRequest rq = CASCADE__V1__RANK_REQUEST__INIT;
        rq.user = &user;
        rq.candidates = cands;
        rq.n_candidates = n;
        Cascade__V1__RankResponse *rr = NULL;
        assert_int_equal(
            cascade_rank_run(rank, a, cascade_now_ms() + 10000, &rq, &rr, err, sizeof err), 0);
        Cascade__V1__PreRankRequest pq = CASCADE__V1__PRE_RANK_REQUEST__INIT;
        pq.user = &user;
        pq.candidates = pcands;
        pq.n_candidates = n;
        pq.keep = (uint32_t)n;
        Cascade__V1__PreRankResponse *pr = NULL;
        assert_int_equal(
            cascade_prerank_run(pre, a, cascade_now_ms() + 10000, &pq, &pr, err, sizeof err), 0);
        Cascade__V1__PreRankResponse *pr_msgs = pr;
        /* The pre-rank request as the orchestrator sends it: the candidates
         * themselves as item_ids + recall_scores columns, their hits as
         * RecallSignals; the answer as scored_ids + scores. */
        Cascade__V1__Candidate **colcands = cascade_arena_calloc(a, n, sizeof *colcands);
        Cascade__V1__PreRankRequest cq = CASCADE__V1__PRE_RANK_REQUEST__INIT;
        cq.user = &user;
        cq.keep = (uint32_t)n;
        cq.item_ids = cascade_arena_calloc(a, n, sizeof *cq.item_ids);
        cq.recall_scores = cascade_arena_calloc(a, n, sizeof *cq.recall_scores);
        for (size_t i = 0; i < n; i++) {
            colcands[i] = candidate_of(a, &l, l.off[g] + i);
            cq.item_ids[cq.n_item_ids++] = colcands[i]->item_id;
            cq.recall_scores[cq.n_recall_scores++] = colcands[i]->recall_score;
        }
        cq.recall_signals = to_columns(a, colcands, n);
        Cascade__V1__PreRankResponse *pr_cols = NULL;
        assert_int_equal(
            cascade_prerank_run(pre, a, cascade_now_ms() + 10000, &cq, &pr_cols, err, sizeof err),
            0);
        assert_int_equal(pr_cols->n_candidates, 0);
        assert_int_equal(pr_cols->n_scored_ids, n);
        assert_int_equal(pr_cols->n_scores, n);
        for (size_t i = 0; i < n; i++) { /* the same order, bit-identical scores */
            assert_int_equal(pr_cols->scored_ids[i], pr_msgs->candidates[i]->item_id);
            assert_float_equal(pr_cols->scores[i], pr_msgs->candidates[i]->prerank_score, 0);
        }
        /* The rank request the same way: answered as RankResponse columns. */
        Cascade__V1__RankResponse *rr_msgs = rr, *rr_cols = NULL;
        Cascade__V1__Candidate **rcolcands = cascade_arena_calloc(a, n, sizeof *rcolcands);
        Cascade__V1__RankRequest crq = CASCADE__V1__RANK_REQUEST__INIT;
        crq.user = &user;
        crq.item_ids = cq.item_ids;
        crq.n_item_ids = n;
        crq.recall_scores = cq.recall_scores;
        crq.n_recall_scores = n;
        for (size_t i = 0; i < n; i++)
            rcolcands[i] = candidate_of(a, &l, l.off[g] + i);
        crq.recall_signals = to_columns(a, rcolcands, n);
        assert_int_equal(
            cascade_rank_run(rank, a, cascade_now_ms() + 10000, &crq, &rr_cols, err, sizeof err),
            0);
        assert_int_equal(rr_cols->n_candidates, 0);
        assert_int_equal(rr_cols->n_scored_ids, n);
        assert_int_equal(rr_cols->n_task_scores, 6 * n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(rr_cols->scored_ids[i], rr_msgs->candidates[i]->item_id);
            assert_float_equal(rr_cols->rank_scores[i], rr_msgs->candidates[i]->rank_score, 0);
            assert_float_equal(rr_cols->task_scores[6 * i], rr_msgs->candidates[i]->tasks->p_click,
                               0);
            assert_int_equal(rr_cols->categories[i], rr_msgs->candidates[i]->attrs->category);
        }
        /* The same requests with the hits in columns, answered scores only. */
        rq.candidates = ccands;
        rq.recall_signals = to_columns(a, ccands, n);
        rq.scores_only = true;
        assert_int_equal(
            cascade_rank_run(rank, a, cascade_now_ms() + 10000, &rq, &rr, err, sizeof err), 0);
        pq.candidates = cpcands;
        pq.recall_signals = to_columns(a, cpcands, n);
        pq.scores_only = true;
        assert_int_equal(
            cascade_prerank_run(pre, a, cascade_now_ms() + 10000, &pq, &pr, err, sizeof err), 0);
        assert_int_equal(pr->n_candidates, n);
        assert_int_equal(rr->n_candidates, n);
        for (size_t i = 0; i < n; i++) { /* scores only: nothing but id and scores */
            assert_int_equal(pr->candidates[i]->n_channels, 0);
            assert_int_equal(rr->candidates[i]->n_channels, 0);
            assert_float_equal(pr->candidates[i]->recall_score, 0, 0);
            assert_non_null(rr->candidates[i]->tasks);
        }
        /* The stages reuse the Candidate objects: index i is still row i. */
        for (size_t i = 0; i < n; i++) {
            assert_float_equal(cands[i]->rank_score, want[i], 1e-5);
            assert_float_equal(pcands[i]->prerank_score, pwant[i], 1e-5);
            assert_float_equal(ccands[i]->rank_score, cands[i]->rank_score, 0);
            assert_float_equal(cpcands[i]->prerank_score, pcands[i]->prerank_score, 0);
            distinct += i > 0 && want[i] != want[0];
            compared++;
        }
    }
    assert_true(compared > 100);
    assert_true(distinct > 10); /* the model is not a constant */
    cascade_arena_destroy(a);
    cascade_rank_destroy(rank);
    cascade_prerank_destroy(pre);
    cascade_gbdt_destroy(rank_model);
    cascade_gbdt_destroy(pre_model);
    cascade_ltr_lists_free(&l);
    test_rmdir(dir);
    cascade_config_destroy(cfg);
}

static int setup(void **state)
{
    return world_group_setup(state, 400, 40000, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services_compute_the_trainers_features),
    };
    return cmocka_run_group_tests(tests, setup, world_group_teardown);
}
