/* The simulation loop: sample users, then day by day and request by request
 * call Recommend with the simulated time, draw each served item's click from
 * the world's true click probability and send the clicks back as Feedback
 * joined by request id. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cascade/v1/recommender.pb-c.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "experiments.h"
#include "hash.h"
#include "rng.h"
#include "rpc.h"
#include "sim.h"

#define DAY_S 86400
#define PROGRESS_MS 2000

struct sim_env {
    const struct cascade_sim_opts *o;
    const cascade_datagen_truth *truth;
    const cascade_dataset *ds;
    cascade_experiments *exp; /* NULL without --config */
    cascade_rpc_channel *ch;
    cascade_arena *arena;
    struct cascade_rng rng;
    struct cascade_sim_summary *sum;
};

/* The arm (layer, experiment) row of the summary, added when new; NULL when
 * the table is full (the arm is then not broken down). */
static struct cascade_sim_arm *arm_row(struct cascade_sim_summary *s, const char *layer,
                                       const char *experiment)
{
    for (size_t i = 0; i < s->n_arms; i++)
        if (strcmp(s->arms[i].layer, layer) == 0 && strcmp(s->arms[i].experiment, experiment) == 0)
            return &s->arms[i];
    if (s->n_arms == CASCADE_SIM_MAX_ARMS)
        return NULL;
    struct cascade_sim_arm *a = &s->arms[s->n_arms++];
    memset(a, 0, sizeof(*a));
    snprintf(a->layer, sizeof(a->layer), "%s", layer);
    snprintf(a->experiment, sizeof(a->experiment), "%s", experiment);
    return a;
}

/* True when a --drop rule removes this user: the config puts the user in the
 * rule's arm and the user's hash falls under the share. */
static int user_dropped(struct sim_env *e, const char *user_id, bool *dropped, char *err,
                        size_t errlen)
{
    *dropped = false;
    if (e->o->n_drops == 0)
        return 0;
    Cascade__V1__ExperimentContext *ctx = NULL;
    cascade_arena_reset(e->arena);
    if (cascade_experiments_assign(e->exp, user_id, e->arena, &ctx) != 0) {
        snprintf(err, errlen, "user %s: experiment assignment failed", user_id);
        return CASCADE_ENOMEM;
    }
    double u = (double)(cascade_hash_str(user_id, e->o->seed ^ 0x5eedd309ULL) >> 11) * 0x1p-53;
    for (size_t d = 0; d < e->o->n_drops; d++) {
        const struct cascade_sim_drop *r = &e->o->drops[d];
        for (size_t l = 0; l < ctx->n_layers; l++)
            if (strcmp(ctx->layers[l]->layer, r->layer) == 0 &&
                strcmp(ctx->layers[l]->experiment, r->experiment) == 0 && u < r->share)
                *dropped = true;
    }
    return 0;
}

/* Send the clicks of one answer (n events). Returns 0 or a negative code. */
static int send_feedback(struct sim_env *e, Cascade__V1__Event **events, size_t n,
                         const char *request_id, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    Cascade__V1__FeedbackRequest req = CASCADE__V1__FEEDBACK_REQUEST__INIT;
    req.events = events;
    req.n_events = n;
    struct cascade_rpc_call call = {.channel = e->ch,
                                    .method = "/cascade.v1.Recommender/Feedback",
                                    .request = &req.base,
                                    .response_type = &cascade__v1__feedback_response__descriptor,
                                    .deadline_ms = cascade_now_ms() + e->o->timeout_ms,
                                    .request_id = request_id};
    if (cascade_rpc_call_unary(&call, e->arena) != 0) {
        snprintf(err, errlen, "Feedback: %s: %s", cascade_grpc_status_name(call.status),
                 call.status_message ? call.status_message : "");
        return CASCADE_EUNAVAILABLE;
    }
    return 0;
}

/* Count an answer into the summary and the arms of its assignment. */
static void count_answer(struct cascade_sim_summary *s, const Cascade__V1__RecommendResponse *r,
                         uint64_t impressions, uint64_t clicks, double p_sum)
{
    s->requests++;
    s->degraded += r->degraded;
    s->impressions += impressions;
    s->clicks += clicks;
    s->p_click_sum += p_sum;
    for (size_t l = 0; r->experiments && l < r->experiments->n_layers; l++) {
        const Cascade__V1__LayerAssignment *la = r->experiments->layers[l];
        struct cascade_sim_arm *a = arm_row(s, la->layer, la->experiment);
        if (!a)
            continue;
        a->requests++;
        a->impressions += impressions;
        a->clicks += clicks;
        a->p_click_sum += p_sum;
    }
}

/* One Recommend of user u at simulated time ts, and its clicks. A failed
 * Recommend is counted, not fatal; INVALID_ARGUMENT is (the stack rejects
 * what the simulator sends: a bug or a wrong world). */
static int one_request(struct sim_env *e, size_t u, int64_t ts, char *err, size_t errlen)
{
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    user.user_id = (char *)e->ds->users[u].id;
    user.request_time_s = ts;
    req.user = &user;
    req.count = e->o->count;
    struct cascade_rpc_call call = {.channel = e->ch,
                                    .method = "/cascade.v1.Recommender/Recommend",
                                    .request = &req.base,
                                    .response_type = &cascade__v1__recommend_response__descriptor,
                                    .deadline_ms = cascade_now_ms() + e->o->timeout_ms};
    cascade_arena_reset(e->arena);
    if (cascade_rpc_call_unary(&call, e->arena) != 0) {
        if (e->sum->failed++ == 0 && !e->o->quiet)
            fprintf(stderr, "sim: user %s: Recommend: %s: %s\n", user.user_id,
                    cascade_grpc_status_name(call.status),
                    call.status_message ? call.status_message : "");
        if (call.status == GRPC_STATUS_INVALID_ARGUMENT) {
            snprintf(err, errlen, "user %s: Recommend: INVALID_ARGUMENT: %s", user.user_id,
                     call.status_message ? call.status_message : "");
            return CASCADE_EINVAL;
        }
        return 0;
    }
    const Cascade__V1__RecommendResponse *r = (const Cascade__V1__RecommendResponse *)call.response;
    size_t n = r->n_items;
    Cascade__V1__Event *ev = cascade_arena_alloc(e->arena, (n + 1) * sizeof(*ev));
    Cascade__V1__Event **evp = cascade_arena_alloc(e->arena, (n + 1) * sizeof(*evp));
    if (!ev || !evp) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    size_t n_clicks = 0;
    double p_sum = 0;
    for (size_t i = 0; i < n; i++) {
        long item = cascade_dataset_find_item(e->ds, r->items[i]->item_id);
        if (item < 0) {
            e->sum->unknown_items++;
            continue;
        }
        double p = cascade_datagen_truth_p_click(e->truth, u, (size_t)item, ts);
        p_sum += p;
        if (!cascade_rng_bernoulli(&e->rng, p))
            continue;
        Cascade__V1__Event *c = &ev[n_clicks];
        cascade__v1__event__init(c);
        c->user_id = user.user_id;
        c->item_id = r->items[i]->item_id;
        c->type = CASCADE__V1__EVENT_TYPE__EVENT_TYPE_CLICK;
        c->time_s = ts + 1 + (int64_t)(i % 4);
        c->request_id = r->request_id;
        evp[n_clicks++] = c;
    }
    count_answer(e->sum, r, n, n_clicks, p_sum);
    return send_feedback(e, evp, n_clicks, r->request_id, err, errlen);
}

/* Partial Fisher-Yates: the first k of a random permutation of 0..n-1. */
static size_t *sample_users(struct cascade_rng *rng, size_t n, size_t k)
{
    size_t *perm = malloc((n + 1) * sizeof(*perm));
    if (!perm)
        return NULL;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + (size_t)cascade_rng_below(rng, n - i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm;
}

static int open_env(const struct cascade_sim_opts *o, struct sim_env *e, char *err, size_t errlen)
{
    int rc = 0;
    cascade_config *cfg = NULL;
    if (o->config_path) {
        cfg = cascade_config_load(o->config_path, err, errlen);
        if (!cfg)
            return CASCADE_EINVAL;
        json_t *section = cascade_config_get(cfg, "experiments");
        e->exp = cascade_experiments_create(json_is_null(section) ? NULL : section, err, errlen);
        cascade_config_destroy(cfg);
        if (!e->exp)
            return CASCADE_EINVAL;
    }
    if (o->n_drops > 0 && !e->exp) {
        snprintf(err, errlen, "--drop needs --config (the arms come from its experiments)");
        return CASCADE_EINVAL;
    }
    e->truth = cascade_datagen_truth_create(&o->world, err, errlen);
    if (!e->truth)
        return CASCADE_EINVAL;
    e->ds = cascade_datagen_truth_dataset(e->truth);
    e->ch = cascade_rpc_channel_create_env(o->target, 64u << 20, err, errlen);
    if (!e->ch)
        return CASCADE_EINVAL;
    if ((rc = cascade_rpc_channel_auth_from_env(e->ch, err, errlen)) != 0)
        return rc;
    e->arena = cascade_arena_create(0);
    if (!e->arena) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    return 0;
}

static void close_env(struct sim_env *e)
{
    cascade_arena_destroy(e->arena);
    cascade_rpc_channel_destroy(e->ch);
    cascade_datagen_truth_destroy((cascade_datagen_truth *)e->truth);
    cascade_experiments_destroy(e->exp);
}

int cascade_sim_run(const struct cascade_sim_opts *o, struct cascade_sim_summary *sum, char *err,
                    size_t errlen)
{
    struct sim_env e = {.o = o, .sum = sum};
    size_t *perm = NULL;
    bool *dropped = NULL;
    int64_t t0 = cascade_now_ms(), last = t0;
    memset(sum, 0, sizeof(*sum));
    int rc = open_env(o, &e, err, errlen);
    if (rc)
        goto out;
    cascade_rng_seed(&e.rng, o->seed);
    size_t n_users = o->users < e.ds->n_users ? o->users : e.ds->n_users;
    perm = sample_users(&e.rng, e.ds->n_users, n_users);
    dropped = calloc(n_users + 1, sizeof(*dropped));
    if (!perm || !dropped) {
        snprintf(err, errlen, "out of memory");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    sum->users = n_users;
    for (size_t i = 0; i < n_users && rc == 0; i++) {
        rc = user_dropped(&e, e.ds->users[perm[i]].id, &dropped[i], err, errlen);
        sum->dropped_users += dropped[i];
    }
    /* The stack takes event times up to 300 s ahead of its clock, so the
     * simulated days end now unless the caller chose day 0. */
    int64_t day0 = o->start_ts ? o->start_ts : cascade_wall_ms() / 1000 - (int64_t)o->days * DAY_S;
    uint64_t planned = (uint64_t)o->days * o->requests_per_day * n_users, done = 0;
    for (uint32_t d = 0; d < o->days && rc == 0; d++) {
        for (uint32_t q = 0; q < o->requests_per_day && rc == 0; q++) {
            /* Requests of one round are spread over its share of the day. */
            int64_t round_s = DAY_S / (int64_t)o->requests_per_day;
            for (size_t i = 0; i < n_users && rc == 0; i++, done++) {
                if (dropped[i]) {
                    sum->dropped_requests++;
                    continue;
                }
                int64_t ts = day0 + (int64_t)d * DAY_S + (int64_t)q * round_s +
                             (int64_t)((double)i * (double)round_s / (double)n_users);
                rc = one_request(&e, perm[i], ts, err, errlen);
                int64_t now = cascade_now_ms();
                if (!o->quiet && now - last >= PROGRESS_MS) {
                    fprintf(stderr, "sim: day %u/%u, %llu/%llu requests, %llu failed, %.1fs\n",
                            d + 1, o->days, (unsigned long long)done, (unsigned long long)planned,
                            (unsigned long long)sum->failed, (double)(now - t0) / 1000.0);
                    last = now;
                }
            }
        }
    }
    if (rc == 0 && sum->failed * 2 > sum->requests + sum->failed && sum->failed > 0) {
        snprintf(err, errlen, "%llu of %llu Recommend calls failed (is the stack at %s up?)",
                 (unsigned long long)sum->failed, (unsigned long long)(sum->requests + sum->failed),
                 o->target);
        rc = CASCADE_EUNAVAILABLE;
    }
out:
    sum->seconds = (double)(cascade_now_ms() - t0) / 1000.0;
    free(dropped);
    free(perm);
    close_env(&e);
    return rc;
}

void cascade_sim_print(const struct cascade_sim_summary *s, FILE *out)
{
    fprintf(out,
            "sim: %zu users (%zu dropped), %llu requests (%llu dropped, %llu failed, %llu "
            "degraded), %llu impressions, %llu clicks, CTR %.4f, true CTR %.4f, %.1fs\n",
            s->users, s->dropped_users, (unsigned long long)s->requests,
            (unsigned long long)s->dropped_requests, (unsigned long long)s->failed,
            (unsigned long long)s->degraded, (unsigned long long)s->impressions,
            (unsigned long long)s->clicks,
            s->impressions ? (double)s->clicks / (double)s->impressions : 0.0,
            s->impressions ? s->p_click_sum / (double)s->impressions : 0.0, s->seconds);
    if (s->unknown_items)
        fprintf(out, "sim: %llu served items are not in the world (never clicked)\n",
                (unsigned long long)s->unknown_items);
    fprintf(out, "%-16s %-24s %9s %11s %8s %8s %9s\n", "layer", "arm", "requests", "impressions",
            "clicks", "ctr", "true_ctr");
    for (size_t i = 0; i < s->n_arms; i++) {
        const struct cascade_sim_arm *a = &s->arms[i];
        double imp = (double)a->impressions;
        fprintf(out, "%-16s %-24s %9llu %11llu %8llu %8.4f %9.4f\n", a->layer, a->experiment,
                (unsigned long long)a->requests, (unsigned long long)a->impressions,
                (unsigned long long)a->clicks, imp > 0 ? (double)a->clicks / imp : 0.0,
                imp > 0 ? a->p_click_sum / imp : 0.0);
    }
}
