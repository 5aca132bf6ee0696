/* cascade-orchestrator: serves cascade.v1.Recommender (Recommend, Feedback)
 * over gRPC. Thin wrapper: options, Redis pool, the orchestrator, the run loop. */
#include <stdio.h>

#include "orchestrator.h"
#include "service.h"

static const char extra_usage[] =
    "Orchestrator config keys (see docs/orchestrator.md):\n"
    "  orchestrator.endpoints.<name>        address of a named endpoint (recall, filter, prerank,\n"
    "                                       rank, rerank; recall_<channel> moves one channel)\n"
    "  orchestrator.channels                list of {name, endpoint, weight, quota, timeout_ms}\n"
    "  orchestrator.cold_start.channels     channel mix for users with few interactions\n"
    "  orchestrator.cold_start.min_interactions  below this, the cold-start mix (default 5)\n"
    "  orchestrator.exploration.new_share   share of the list for new items (default 0.05)\n"
    "  orchestrator.exploration.position    first slot, as a share of the list (default 0.8)\n"
    "  orchestrator.exploration.max_rank_share  a pick must rank in this top share (0.5)\n"
    "  orchestrator.exploration.candidates  new items the ranker scores for the pick (20)\n"
    "  orchestrator.exploration.guarantee_deficit  with target_impressions: one item this far\n"
    "                                       behind schedule may bypass max_rank_share (0.5)\n"
    "  orchestrator.cache.capacity          ranked-but-unshown items kept per user (default "
    "200)\n"
    "  orchestrator.hard_negatives.*        log of items the ranker cut: enabled, per_request,\n"
    "                                       cap, ttl_s (defaults true, 20, 200, 2592000)\n"
    "  orchestrator.stages.<stage>.*        endpoint, timeout_ms, keep, enabled, min_ms (the\n"
    "                                       time earlier stages keep back for it; default 20)\n"
    "  orchestrator.{exposure,recall}.min_ms  the same for the exposure reservation and the\n"
    "                                       least time a recall channel gets (default 20)\n"
    "  orchestrator.deadline_ms             budget when the caller sets no deadline (default "
    "2000)\n"
    "  orchestrator.merge_max               merged candidates kept (default 2000)\n"
    "  orchestrator.exposure.timeout_ms     RecordExposure budget (default 300)\n"
    "  orchestrator.fallback.hot_max        hot-list fallback size (default 500)\n"
    "  orchestrator.feedback.lastn_max      last-n length kept per user (default 1000)\n"
    "  experiments                          A/B layers (common/experiments.h)\n";

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    cascade_orch *orch = cascade_orch_create(o->config, redis, o->ns, metrics, err, errlen);
    if (orch == NULL)
        return NULL;
    /* The stages check the same token when they are given one. */
    if (cascade_orch_set_auth_token(orch, o->auth_token) != 0) {
        snprintf(err, errlen, "the auth token must be 1..256 visible ASCII characters");
        cascade_orch_destroy(orch);
        return NULL;
    }
    return orch;
}

static void destroy_stage(void *stage)
{
    cascade_orch_destroy(stage);
}

static int reload_stage(void *stage, const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_orch_reload(stage, cfg, err, errlen);
}

static const struct cascade_service_stage stage = {
    .name = "orchestrator",
    .default_port = 50050,
    /* Each request holds a worker while it waits on the stages. */
    .threads_per_core = 4,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.Recommender",
    .needs_redis = 1,
    .create_failed_code = 2,
    .create = create_stage,
    .methods = cascade_orch_methods,
    .destroy = destroy_stage,
    .reload = reload_stage,
};

int main(int argc, char **argv)
{
    return cascade_service_main(&stage, argc, argv);
}
