/* cascade-prerank: serves cascade.v1.PreRank over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include <stdio.h>

#include "prerank.h"
#include "service.h"

static const char extra_usage[] =
    "PreRank config keys:\n"
    "  prerank.keep                    candidates kept when the request says 0 (default 300)\n"
    "  prerank.max_candidates          largest candidate list accepted (default 20000)\n"
    "  prerank.weights.clicks          weight of log1p(clicks) (default 0.2)\n"
    "  prerank.weights.ctr             weight of the smoothed CTR (default 4.0)\n"
    "  prerank.weights.recall          weight of the recall score (default 1.0)\n"
    "  prerank.ctr_prior.clicks        CTR smoothing pseudo-clicks (default 1)\n"
    "  prerank.ctr_prior.impressions   CTR smoothing pseudo-impressions (default 20)\n"
    "  prerank.reload_interval_ms      how often <model-dir>/prerank-lr.latest is checked (1000)\n"
    "Without a model in --model-dir the heuristic above scores (model_version says so).\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    cascade_prerank *prerank = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("prerank", 50053, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
    if (!(redis = cascade_redis_pool_create(&ropts))) {
        fprintf(stderr, "cascade-prerank: out of memory creating the Redis pool\n");
        goto out;
    }
    if (!(prerank = cascade_prerank_create(opts.config, redis, opts.ns, opts.model_dir, err,
                                           sizeof err))) {
        fprintf(stderr, "cascade-prerank: %s\n", err);
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_prerank_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.PreRank", methods, n_methods, prerank);
out:
    cascade_prerank_destroy(prerank);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
