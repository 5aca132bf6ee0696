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
    "  orchestrator.exploration.new_share   share of the list for new items (default 0.1)\n"
    "  orchestrator.cache.capacity          ranked-but-unshown items kept per user (default "
    "200)\n"
    "  orchestrator.stages.<stage>.*        endpoint, timeout_ms, keep, enabled\n"
    "  orchestrator.deadline_ms             budget when the caller sets no deadline (default "
    "2000)\n"
    "  orchestrator.merge_max               merged candidates kept (default 2000)\n"
    "  orchestrator.exposure.timeout_ms     RecordExposure budget (default 300)\n"
    "  orchestrator.fallback.hot_max        hot-list fallback size (default 500)\n"
    "  orchestrator.feedback.lastn_max      last-n length kept per user (default 200)\n"
    "  experiments                          A/B layers (common/experiments.h)\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    cascade_orch *orch = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("orchestrator", 50050, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
    if (!(redis = cascade_redis_pool_create(&ropts))) {
        fprintf(stderr, "cascade-orchestrator: out of memory creating the Redis pool\n");
        goto out;
    }
    if (!(orch = cascade_orch_create(opts.config, redis, opts.ns, err, sizeof err))) {
        fprintf(stderr, "cascade-orchestrator: %s\n", err);
        code = 2;
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_orch_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.Recommender", methods, n_methods,
                               orch);
out:
    cascade_orch_destroy(orch);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
