/* cascade-rank: serves cascade.v1.Rank (learned ranker, MMoE or LR predictions + fusion) over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include "rank.h"
#include "ml.h"
#include "service.h"

static const char extra_usage[] =
    "Rank config keys:\n"
    "  rank.model                      auto (first loaded of rank-ltr, rank-mmoe, rank-lr "
    ".latest),\n"
    "                                  ltr, mmoe, lr, heuristic (default auto; experiment param\n"
    "                                  of the same name, falling back to this when not loaded)\n"
    "  rank.fusion.formula             weighted_sum, click_boost, rank_based, product\n"
    "                                  (default weighted_sum; experiment param of the same name)\n"
    "  rank.fusion.weights.<task>      task weight; tasks click (default 1), like, collect,\n"
    "                                  share, watch_time, complete (default 0)\n"
    "  rank.fusion.rank_alpha, rank_beta  rank_based: w / (rank^alpha + beta) (1, 10)\n"
    "  rank.fusion.complete_adjust     fuse p_complete / f(duration) (default true)\n"
    "  rank.reload_interval_ms         how often the .latest file is checked (1000)\n"
    "  rank.heuristic.prior_clicks     CTR smoothing while no model exists (default 1)\n"
    "  rank.heuristic.prior_impressions  (default 20)\n"
    "  rank.max_candidates             largest candidate list accepted (default 5000)\n"
    "  experiment param rank.model_version  a model file in the model dir (rank-lr-..., \n"
    "                                  rank-mmoe-..., rank-ltr-...) kept loaded for that arm\n";

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    return cascade_rank_create(o->config, redis, o->ns, o->model_dir, metrics, err, errlen);
}

static void destroy_stage(void *stage)
{
    cascade_rank_destroy(stage);
}

/* SIGHUP: the model versions experiments name (rank.model_version) are
 * loaded or released; the rest of the rank section needs a restart. */
static int reload_stage(void *stage, const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_rank_pin_versions(stage, cfg, err, errlen);
}

static const struct cascade_service_stage stage = {
    .name = "rank",
    .default_port = 50054,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.Rank",
    .needs_redis = 1,
    .create = create_stage,
    .methods = cascade_rank_methods,
    .destroy = destroy_stage,
    .reload = reload_stage,
};

int main(int argc, char **argv)
{
    cascade_ml_init(); /* one OpenBLAS thread per worker (ml.h) */
    return cascade_service_main(&stage, argc, argv);
}
