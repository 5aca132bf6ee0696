/* cascade-prerank: serves cascade.v1.PreRank over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include "prerank.h"
#include "ml.h"
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
    "  experiment param prerank.model_version  a model file in the model dir (prerank-lr-...,\n"
    "                                  prerank-ltr-...) kept loaded for that arm\n"
    "Without a model in --model-dir the heuristic above scores (model_version says so).\n";

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    return cascade_prerank_create(o->config, redis, o->ns, o->model_dir, metrics, err, errlen);
}

static void destroy_stage(void *stage)
{
    cascade_prerank_destroy(stage);
}

/* SIGHUP: the model versions experiments name (prerank.model_version) are
 * loaded or released; the rest of the prerank section needs a restart. */
static int reload_stage(void *stage, const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_prerank_pin_versions(stage, cfg, err, errlen);
}

static const struct cascade_service_stage stage = {
    .name = "prerank",
    .default_port = 50053,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.PreRank",
    .needs_redis = 1,
    .create = create_stage,
    .methods = cascade_prerank_methods,
    .destroy = destroy_stage,
    .reload = reload_stage,
};

int main(int argc, char **argv)
{
    cascade_ml_init(); /* one OpenBLAS thread per worker (ml.h) */
    return cascade_service_main(&stage, argc, argv);
}
