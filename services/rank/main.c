/* cascade-rank: serves cascade.v1.Rank (MMoE or LR predictions + fusion) over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include <stdio.h>

#include "rank.h"
#include "service.h"

static const char extra_usage[] =
    "Rank config keys:\n"
    "  rank.model                      auto (rank-mmoe.latest, else rank-lr.latest), mmoe, lr,\n"
    "                                  heuristic (default auto)\n"
    "  rank.fusion.formula             weighted_sum, click_boost, rank_based, product\n"
    "                                  (default weighted_sum; experiment param of the same name)\n"
    "  rank.fusion.weights.<task>      task weight; tasks click (default 1), like, collect,\n"
    "                                  share, watch_time, complete (default 0)\n"
    "  rank.fusion.rank_alpha, rank_beta  rank_based: w / (rank^alpha + beta) (1, 10)\n"
    "  rank.fusion.complete_adjust     fuse p_complete / f(duration) (default true)\n"
    "  rank.reload_interval_ms         how often the .latest file is checked (1000)\n"
    "  rank.heuristic.prior_clicks     CTR smoothing while no model exists (default 1)\n"
    "  rank.heuristic.prior_impressions  (default 20)\n"
    "  rank.max_candidates             largest candidate list accepted (default 5000)\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    cascade_rank *rank = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("rank", 50054, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
    if (!(redis = cascade_redis_pool_create(&ropts))) {
        fprintf(stderr, "cascade-rank: out of memory creating the Redis pool\n");
        goto out;
    }
    rank = cascade_rank_create(opts.config, redis, opts.ns, opts.model_dir, err, sizeof err);
    if (!rank) {
        fprintf(stderr, "cascade-rank: %s\n", err);
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_rank_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.Rank", methods, n_methods, rank);
out:
    cascade_rank_destroy(rank);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
