/* Recommend, recall side: choose the channel mix (a user with fewer than
 * cold_start.min_interactions interactions gets the cold-start mix), call
 * Recall once per endpoint (or per channel) in parallel, merge the answers by weight and quota
 * with provenance, and fall back to the hot list when nothing came back. */
#include <stdio.h>
#include <string.h>

#include "cascade/v1/recall.pb-c.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "idmap.h"
#include "merge.h"
#include "log.h"
#include "recommend_internal.h"
#include "store.h"

/* ------------------------------------------------------------- channel mix */

/* True when the experiment's "recall.channels" list (comma separated) is
 * absent or names the channel. */
static bool channel_selected(const struct cascade_orch_rq *rq, const char *name)
{
    const char *list = cascade_exp_param(rq->exp, "recall.channels");
    if (list == NULL || list[0] == '\0')
        return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *stop = end;
        while (stop > p && stop[-1] == ' ')
            stop--;
        if ((size_t)(stop - p) == len && strncmp(p, name, len) == 0)
            return true;
        p = end;
    }
    return false;
}

/* Decide between the normal and the cold-start mix from the user record and
 * the online interaction count (one round trip). Without a cold-start mix or a Redis the normal mix
 * is used; when the record cannot be read, too, with a degrade reason. */
static void choose_mix(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    cascade_v1_UserRecord rec;
    bool found = false;
    const char *msg;
    int64_t t0 = cascade_now_us();
    rq->cold_start = false;
    if (cfg->n_cold_channels == 0 || rq->o->redis == NULL) {
        cascade_orch__report(rq, &(struct cascade_orch_outcome){
                                     .stage = "mix", .message = "normal: no cold-start mix"});
        return;
    }
    cascade_redis *r = cascade_redis_pool_get(rq->o->redis);
    cascade_redis_set_deadline(r, rq->deadline_ms);
    uint32_t online = 0;
    int online_rc = 0;
    int rc = r ? cascade_store_get_user_and_interactions(r, rq->o->ns, rq->user->user_id, &rec,
                                                         &found, &online, &online_rc)
               : CASCADE_ENOMEM;
    if (rc != 0) {
        cascade_orch__report(rq, &(struct cascade_orch_outcome){
                                     .stage = "mix",
                                     .status = GRPC_STATUS_UNAVAILABLE,
                                     .message = cascade_arena_printf(
                                         rq->arena, "user record: %s (normal channel mix used)",
                                         r ? cascade_redis_error(r) : "out of memory"),
                                     .latency_us = cascade_now_us() - t0,
                                     .degraded = true});
        return;
    }
    uint32_t interactions = found ? rec.interactions : 0;
    /* Below the bar by the nightly record: the consumer's live count
     * (docs/closed-loop.md), read with the record, may already lift the
     * user out of cold start. The larger of the two counts, as both include
     * the oldest interactions. */
    if (interactions < cfg->cold_min_interactions && online_rc != 0)
        CASCADE_WARN(rq->user->request_id, "online interaction count not read for user %s: %s",
                     rq->user->user_id, cascade_redis_error(r));
    if (interactions >= cfg->cold_min_interactions)
        online = 0; /* above the bar by the record: the count is not needed */
    if (online > interactions)
        interactions = online;
    rq->cold_start = interactions < cfg->cold_min_interactions;
    if (!found && online == 0)
        msg = "cold_start: no user record";
    else
        msg = cascade_arena_printf(rq->arena, "%s: %u interactions%s (cold start below %u)",
                                   rq->cold_start ? "cold_start" : "normal", interactions,
                                   online >= interactions && online ? " (online)" : "",
                                   cfg->cold_min_interactions);
    cascade_orch__report(rq, &(struct cascade_orch_outcome){.stage = "mix",
                                                            .message = msg,
                                                            .latency_us = cascade_now_us() - t0});
}

/* The experiment's value of "<prefix><channel>" (e.g. recall.weight.hot), or
 * the configured one. Channel names are shorter than CASCADE_ORCH_NAME_MAX
 * (config validation), so the key always fits; were it cut, the lookup
 * would name another parameter, hence the check. */
static double channel_param(const struct cascade_orch_rq *rq, const char *prefix,
                            const char *channel, double configured)
{
    char key[CASCADE_ORCH_NAME_MAX + 32];
    int len = snprintf(key, sizeof key, "%s%s", prefix, channel);
    if (len < 0 || (size_t)len >= sizeof key)
        return configured;
    return cascade_exp_param_double(rq->exp, key, configured);
}

/* The channels to call: the chosen mix, narrowed by the experiment's
 * recall.channels, with experiment weight/quota overrides. */
static int plan_channels(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    const struct cascade_orch_channel_cfg *list =
        rq->cold_start ? cfg->cold_channels : cfg->channels;
    cascade_rpc_channel *const *rpc = rq->cold_start ? rq->o->cold_channel_of : rq->o->channel_of;
    size_t n = rq->cold_start ? cfg->n_cold_channels : cfg->n_channels;
    rq->runs = cascade_arena_calloc(rq->arena, n + 1, sizeof *rq->runs);
    rq->n_runs = 0;
    if (rq->runs == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct cascade_orch_channel_cfg *ch = &list[i];
        if (!channel_selected(rq, ch->name))
            continue;
        struct cascade_orch_channel_run *run = &rq->runs[rq->n_runs++];
        run->name = ch->name;
        run->rpc = rpc[i];
        run->timeout_ms = ch->timeout_ms;
        run->weight = channel_param(rq, "recall.weight.", ch->name, ch->weight);
        if (!(run->weight >= 0.0))
            run->weight = 0.0;
        double q = channel_param(rq, "recall.quota.", ch->name, ch->quota);
        run->quota = q < 1 ? 1 : q > 5000 ? 5000 : (uint32_t)q;
    }
    return 0;
}

/* ------------------------------------------------------------------ fan-out
 * Batched (orchestrator.recall.batch, the default): one Recall call per
 * endpoint, each channel a ChannelSpec with its quota and its own time budget
 * (the service runs them in order and reports each one's status), so the
 * user's profile and history are read once per endpoint and the request pays
 * one RPC, not one per channel. Unbatched: one call per channel, as the
 * per-channel answers of a batch are taken apart into the same lists. */

/* A Recall request for runs[first..) that go to `rpc` (batched), or for the
 * one run `first` (unbatched). */
static Cascade__V1__RecallRequest *recall_request(struct cascade_orch_rq *rq, size_t first,
                                                  size_t call, int64_t *deadline_ms)
{
    Cascade__V1__RecallRequest *req = cascade_arena_alloc(rq->arena, sizeof *req);
    if (req == NULL)
        return NULL;
    cascade__v1__recall_request__init(req);
    req->user = rq->user;
    req->experiments = rq->exp;
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    const struct cascade_orch_channel_run *one = &rq->runs[first];
    if (!cfg->recall_batch) {
        char **names = cascade_arena_alloc(rq->arena, sizeof *names);
        if (names == NULL)
            return NULL;
        names[0] = (char *)one->name;
        req->n_channels = 1;
        req->channels = names;
        req->quota = one->quota;
        *deadline_ms = cascade_orch__budget_deadline(rq, one->timeout_ms, cfg->recall_min_ms,
                                                     cfg->recall_reserve_ms);
        return req;
    }
    size_t n = 0;
    for (size_t k = first; k < rq->n_runs; k++)
        n += rq->runs[k].call == call;
    Cascade__V1__ChannelSpec **specs = cascade_arena_calloc(rq->arena, n, sizeof *specs);
    Cascade__V1__ChannelSpec *slab = cascade_arena_calloc(rq->arena, n, sizeof *slab);
    if (specs == NULL || slab == NULL)
        return NULL;
    int64_t now = cascade_now_ms();
    *deadline_ms = 0;
    for (size_t k = first; k < rq->n_runs; k++) {
        const struct cascade_orch_channel_run *run = &rq->runs[k];
        if (run->call != call)
            continue;
        int64_t deadline = cascade_orch__budget_deadline(rq, run->timeout_ms, cfg->recall_min_ms,
                                                         cfg->recall_reserve_ms);
        Cascade__V1__ChannelSpec *spec = &slab[req->n_channel_specs];
        cascade__v1__channel_spec__init(spec);
        spec->channel = (char *)run->name;
        spec->quota = run->quota;
        spec->timeout_ms = deadline > now ? (uint32_t)(deadline - now) : 1;
        specs[req->n_channel_specs++] = spec;
        if (deadline > *deadline_ms)
            *deadline_ms = deadline;
    }
    req->channel_specs = specs;
    req->lists = cfg->compact_stage_calls; /* each channel's list as columns */
    return req;
}

/* Give every run the index of its call: one per channel, or (batched) one
 * per distinct endpoint in order of first use. Returns the number of calls. */
static size_t assign_calls(struct cascade_orch_rq *rq)
{
    size_t n_calls = 0;
    for (size_t k = 0; k < rq->n_runs; k++) {
        struct cascade_orch_channel_run *run = &rq->runs[k];
        run->call = n_calls;
        if (rq->o->cfg.recall_batch)
            for (size_t j = 0; j < k; j++)
                if (rq->runs[j].rpc == run->rpc) {
                    run->call = rq->runs[j].call;
                    break;
                }
        if (run->call == n_calls)
            n_calls++;
    }
    return n_calls;
}

/* The ChannelResult of `name` in a batched answer, or NULL. */
static const Cascade__V1__ChannelResult *channel_result(const Cascade__V1__RecallResponse *resp,
                                                        const char *name)
{
    for (size_t i = 0; i < resp->n_channels; i++)
        if (resp->channels[i] && resp->channels[i]->channel &&
            strcmp(resp->channels[i]->channel, name) == 0)
            return resp->channels[i];
    return NULL;
}

/* Run j's list from its ChannelResult's columns (RecallRequest.lists): a
 * candidate per item, first occurrence kept, each with the one hit a call for
 * that channel alone carries (the channel, its score, its rank = position),
 * as the candidates form gives after split_answer. Returns 0 or
 * CASCADE_ENOMEM. */
static int list_from_columns(struct cascade_orch_rq *rq, const struct cascade_orch_channel_run *run,
                             const Cascade__V1__ChannelResult *cr, Cascade__V1__Candidate ***list,
                             size_t *count)
{
    size_t n = cr->n_item_ids < cr->count ? cr->n_item_ids : cr->count;
    Cascade__V1__Candidate **out = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *out);
    Cascade__V1__Candidate *cands = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *cands);
    Cascade__V1__ChannelHit *hits = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *hits);
    Cascade__V1__ChannelHit **ptrs = cascade_arena_alloc(rq->arena, (n + 1) * sizeof *ptrs);
    cascade_idmap seen;
    if (!out || !cands || !hits || !ptrs || cascade_idmap_init(&seen, rq->arena, n) != 0)
        return CASCADE_ENOMEM;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        bool created = false;
        if (!cascade_idmap_upsert(&seen, cr->item_ids[i], &created))
            return CASCADE_ENOMEM;
        if (!created)
            continue;
        size_t k = (*count)++;
        cascade__v1__candidate__init(&cands[k]);
        cascade__v1__channel_hit__init(&hits[k]);
        hits[k].channel = (char *)run->name;
        hits[k].score = i < cr->n_scores ? cr->scores[i] : 0.0f;
        hits[k].rank = (uint32_t)i;
        ptrs[k] = &hits[k];
        cands[k].item_id = cr->item_ids[i];
        cands[k].channels = &ptrs[k];
        cands[k].n_channels = 1;
        out[k] = &cands[k];
    }
    *list = out;
    return 0;
}

/* Take a batched answer apart: for each run carried by `call`, its
 * candidates in that channel's order, each where its first hit of the channel
 * ranks, so a run's list is the one a call for that channel alone returns
 * (one candidate per item, in order of first appearance). One pass over the
 * hits; a hit's channel is found by hash, then confirmed by name. lists[j]
 * stays NULL for a run whose ChannelResult is missing or not OK. Returns 0 or
 * CASCADE_ENOMEM. */
static int split_answer(struct cascade_orch_rq *rq, const Cascade__V1__RecallResponse *resp,
                        size_t call, Cascade__V1__Candidate ***lists, size_t *counts)
{
    uint64_t hash[CASCADE_ORCH_MAX_CHANNELS + 1];
    size_t cap[CASCADE_ORCH_MAX_CHANNELS + 1];
    for (size_t j = 0; j < rq->n_runs; j++) {
        const struct cascade_orch_channel_run *run = &rq->runs[j];
        const Cascade__V1__ChannelResult *cr =
            run->call == call ? channel_result(resp, run->name) : NULL;
        hash[j] = cascade_hash_str(run->name, 0);
        cap[j] = cr && cr->status == GRPC_STATUS_OK ? cr->count : 0; /* 0: not this call's */
        if (cr == NULL || cr->status != GRPC_STATUS_OK)
            continue;
        if (cr->n_item_ids > 0) { /* the channel's list in columns: no hits to walk */
            if (list_from_columns(rq, run, cr, &lists[j], &counts[j]))
                return CASCADE_ENOMEM;
            cap[j] = 0;
            continue;
        }
        if (!(lists[j] = cascade_arena_calloc(rq->arena, cap[j] + 1, sizeof *lists[j])))
            return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < resp->n_candidates; i++) {
        Cascade__V1__Candidate *c = resp->candidates[i];
        uint64_t seen = 0; /* runs this candidate was already placed for */
        for (size_t h = 0; c && h < c->n_channels; h++) {
            const Cascade__V1__ChannelHit *hit = c->channels[h];
            if (hit == NULL || hit->channel == NULL)
                continue;
            uint64_t hv = cascade_hash_str(hit->channel, 0);
            for (size_t j = 0; j < rq->n_runs; j++) {
                if (cap[j] == 0 || hash[j] != hv || strcmp(rq->runs[j].name, hit->channel))
                    continue;
                if (!(seen & (1ULL << j)) && hit->rank < cap[j] && lists[j][hit->rank] == NULL)
                    lists[j][hit->rank] = c;
                seen |= 1ULL << j;
                break;
            }
        }
    }
    for (size_t j = 0; j < rq->n_runs; j++) {
        if (rq->runs[j].call != call || lists[j] == NULL || cap[j] == 0)
            continue;
        counts[j] = 0;
        for (size_t r = 0; r < cap[j]; r++)
            if (lists[j][r])
                lists[j][counts[j]++] = lists[j][r];
    }
    return 0;
}

/* What run j got: its candidates (NULL when it failed), with the outcome for
 * the trace filled in. lists/counts: the batched answers taken apart. */
static Cascade__V1__Candidate **run_answer(struct cascade_orch_rq *rq, size_t j,
                                           const struct cascade_rpc_call *call,
                                           Cascade__V1__Candidate **const *lists,
                                           const size_t *counts, struct cascade_orch_outcome *out,
                                           size_t *n)
{
    const struct cascade_orch_channel_run *run = &rq->runs[j];
    Cascade__V1__RecallResponse *resp = (Cascade__V1__RecallResponse *)call->response;
    *n = 0;
    out->latency_us = call->latency_us;
    if (call->status != GRPC_STATUS_OK || resp == NULL) {
        out->status = call->status;
        out->message = call->status_message;
        return NULL;
    }
    if (!rq->o->cfg.recall_batch) {
        *n = resp->n_candidates;
        return resp->candidates;
    }
    const Cascade__V1__ChannelResult *cr = channel_result(resp, run->name);
    if (cr == NULL) {
        out->status = GRPC_STATUS_INTERNAL;
        out->message = "the Recall answer has no result for this channel";
        return NULL;
    }
    out->latency_us = cr->latency_us;
    if (cr->status != GRPC_STATUS_OK) {
        out->status = (grpc_status_code)cr->status;
        out->message = cr->message;
        return NULL;
    }
    *n = counts[j];
    return lists[j];
}

/* Record how each channel went and collect the good ones for merging.
 * Returns the number of inputs, or CASCADE_ENOMEM. */
static int collect_channels(struct cascade_orch_rq *rq, struct cascade_rpc_call *calls,
                            size_t n_calls, struct cascade_merge_input *inputs, size_t *total)
{
    size_t m = 0;
    Cascade__V1__Candidate **lists[CASCADE_ORCH_MAX_CHANNELS + 1] = {0};
    size_t counts[CASCADE_ORCH_MAX_CHANNELS + 1] = {0};
    *total = 0;
    for (size_t c = 0; rq->o->cfg.recall_batch && c < n_calls; c++)
        if (calls[c].status == GRPC_STATUS_OK && calls[c].response &&
            split_answer(rq, (const Cascade__V1__RecallResponse *)calls[c].response, c, lists,
                         counts))
            return CASCADE_ENOMEM;
    for (size_t j = 0; j < rq->n_runs; j++) {
        struct cascade_orch_channel_run *run = &rq->runs[j];
        struct cascade_orch_outcome out = {
            .stage = cascade_arena_printf(rq->arena, "recall/%s", run->name)};
        size_t n = 0;
        Cascade__V1__Candidate **cands =
            run_answer(rq, j, &calls[run->call], lists, counts, &out, &n);
        run->ok = cands != NULL;
        run->returned = n;
        out.items_out = n;
        out.degraded = !run->ok;
        if (out.message == NULL)
            out.message = "";
        if (out.stage)
            cascade_orch__report(rq, &out);
        if (!run->ok)
            continue;
        inputs[m++] = (struct cascade_merge_input){.channel = run->name,
                                                   .weight = run->weight,
                                                   .quota = run->quota,
                                                   .candidates = cands,
                                                   .n_candidates = n};
        *total += n;
    }
    return (int)m;
}

/* Start the calls and wait for them; *n_calls = how many. */
static int fan_out(struct cascade_orch_rq *rq, struct cascade_rpc_call *calls, size_t *n_calls)
{
    *n_calls = assign_calls(rq);
    for (size_t k = 0, call = 0; k < rq->n_runs; k++) {
        if (rq->runs[k].call != call)
            continue; /* carried by an earlier run's call */
        int64_t deadline_ms;
        Cascade__V1__RecallRequest *req = recall_request(rq, k, call, &deadline_ms);
        if (req == NULL)
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
        calls[call++] = (struct cascade_rpc_call){
            .channel = rq->runs[k].rpc,
            .method = "/cascade.v1.Recall/Recall",
            .request = &req->base,
            .response_type = &cascade__v1__recall_response__descriptor,
            .deadline_ms = deadline_ms,
            .request_id = rq->user->request_id,
        };
    }
    if (*n_calls > 0)
        cascade_rpc_fanout(calls, *n_calls, rq->arena);
    return 0;
}

int cascade_orch__run_recall(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    size_t total = 0;
    int rc;
    choose_mix(rq);
    if ((rc = plan_channels(rq)))
        return rc;
    struct cascade_rpc_call *calls = cascade_arena_calloc(rq->arena, rq->n_runs + 1, sizeof *calls);
    struct cascade_merge_input *inputs =
        cascade_arena_calloc(rq->arena, rq->n_runs + 1, sizeof *inputs);
    if (calls == NULL || inputs == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    size_t n_calls;
    if ((rc = fan_out(rq, calls, &n_calls)))
        return rc;
    int64_t t0 = cascade_now_us();
    int collected = collect_channels(rq, calls, n_calls, inputs, &total);
    if (collected < 0)
        return cascade_orch__fail(rq->call, collected, "out of memory taking recall answers apart");
    size_t m = (size_t)collected;
    uint32_t merge_max =
        (uint32_t)cascade_exp_param_double(rq->exp, "orchestrator.merge_max", cfg->merge_max);
    rc = cascade_merge_channels(inputs, m, merge_max ? merge_max : cfg->merge_max, rq->arena,
                                &rq->cands, &rq->n);
    if (rc)
        return cascade_orch__fail(rq->call, rc, "out of memory merging recall channels");
    const char **names = cascade_arena_calloc(rq->arena, rq->n_runs + 1, sizeof *names);
    size_t *kept = cascade_arena_calloc(rq->arena, rq->n_runs + 1, sizeof *kept);
    if (names == NULL || kept == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (size_t j = 0; j < rq->n_runs; j++)
        names[j] = rq->runs[j].name;
    cascade_merge_count_channels(rq->cands, rq->n, names, rq->n_runs, kept);
    for (size_t j = 0; j < rq->n_runs; j++)
        rq->runs[j].kept = kept[j];
    rq->source = CASCADE_SCORE_RECALL;
    cascade_orch__report(rq, &(struct cascade_orch_outcome){
                                 .stage = "merge",
                                 .message = rq->cold_start ? "cold_start mix" : "normal mix",
                                 .latency_us = cascade_now_us() - t0,
                                 .items_in = total,
                                 .items_out = rq->n,
                                 .order = rq->cands,
                                 .n_order = rq->n});
    return 0;
}

/* ---------------------------------------------------------------- fallback */

static Cascade__V1__Candidate *fallback_candidate(cascade_arena *arena, uint64_t id, double score,
                                                  uint32_t rank)
{
    Cascade__V1__Candidate *c = cascade_arena_alloc(arena, sizeof *c);
    Cascade__V1__ChannelHit *h = cascade_arena_alloc(arena, sizeof *h);
    Cascade__V1__ChannelHit **hits = cascade_arena_alloc(arena, sizeof *hits);
    if (c == NULL || h == NULL || hits == NULL)
        return NULL;
    cascade__v1__candidate__init(c);
    cascade__v1__channel_hit__init(h);
    h->channel = "hot_fallback";
    h->score = (float)score;
    h->rank = rank;
    hits[0] = h;
    c->item_id = id;
    c->channels = hits;
    c->n_channels = 1;
    c->recall_score = (float)score;
    return c;
}

/* The top of the current hot list ({ns}:hot@{gen}); *got = 0 when no hot
 * generation was ever published. */
static int read_hot(cascade_redis *r, const char *ns, size_t max, uint64_t *ids, double *scores,
                    size_t *got)
{
    char key[CASCADE_KEY_MAX];
    int64_t gen = 0;
    *got = 0;
    int rc = cascade_store_get_generation(r, ns, "hot", &gen);
    if (rc || gen <= 0)
        return rc;
    return cascade_store_top_items(r, cascade_key_artefact(key, ns, "hot", gen, NULL), max, ids,
                                   scores, got);
}

int cascade_orch__run_fallback(struct cascade_orch_rq *rq)
{
    const struct cascade_orch_config *cfg = &rq->o->cfg;
    size_t got = 0;
    int64_t t0 = cascade_now_us();
    cascade_redis *r = rq->o->redis ? cascade_redis_pool_get(rq->o->redis) : NULL;
    cascade_redis_set_deadline(r, rq->deadline_ms);
    uint64_t *ids = cascade_arena_calloc(rq->arena, cfg->fallback_max, sizeof *ids);
    double *scores = cascade_arena_calloc(rq->arena, cfg->fallback_max, sizeof *scores);
    rq->used_fallback = true;
    if (ids == NULL || scores == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    if (r == NULL)
        return cascade_orch__fail(
            rq->call, CASCADE_EUNAVAILABLE,
            "no candidates: every recall channel failed or came back empty, and no "
            "Redis is configured for the hot-list fallback");
    if (read_hot(r, rq->o->ns, cfg->fallback_max, ids, scores, &got))
        return cascade_orch__fail(
            rq->call, CASCADE_EUNAVAILABLE,
            "no candidates: every recall channel failed or came back empty, and the "
            "hot-list fallback failed: %s",
            cascade_redis_error(r));
    rq->cands = cascade_arena_calloc(rq->arena, got + 1, sizeof *rq->cands);
    if (rq->cands == NULL)
        return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    for (rq->n = 0; rq->n < got; rq->n++)
        if (!(rq->cands[rq->n] =
                  fallback_candidate(rq->arena, ids[rq->n], scores[rq->n], (uint32_t)rq->n)))
            return cascade_orch__fail(rq->call, CASCADE_ENOMEM, "out of memory");
    rq->source = CASCADE_SCORE_RECALL;
    cascade_orch__report(rq, &(struct cascade_orch_outcome){
                                 .stage = "fallback",
                                 .code = "hot",
                                 .message = "no candidates from any recall channel; serving the "
                                            "hot list",
                                 .latency_us = cascade_now_us() - t0,
                                 .items_out = rq->n,
                                 .degraded = true,
                                 .order = rq->cands,
                                 .n_order = rq->n});
    return 0;
}
