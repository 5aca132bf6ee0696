/* cascade-rerank: serves cascade.v1.ReRank (MMR / DPP, scatter rules) over
 * gRPC. Thin wrapper: options, the stage, the run loop. No Redis needed; the
 * two-tower item vectors come from the model directory. */
#include "rerank.h"
#include "ml.h"
#include "service.h"

static const char extra_usage[] =
    "ReRank config keys (each numeric key and rerank.method may also be set per request by an\n"
    "experiment param of the same name; docs/stages.md, ReRank):\n"
    "  rerank.method                   \"mmr\" or \"dpp\" (default mmr)\n"
    "  rerank.lambda                   MMR relevance/diversity trade-off in [0,1] (default 0.7)\n"
    "  rerank.dpp.theta                DPP relevance weight θ in [0,1] (default 0.7; 1 = "
    "relevance)\n"
    "  rerank.dpp.window               DPP sliding window, picks (default 0 = the whole list)\n"
    "  rerank.sim.category             similarity of two items in one category (default 0.7)\n"
    "  rerank.sim.author               similarity of two items by one author (default 0.3)\n"
    "  rerank.sim.embedding            weight of the embedding cosine (default 1.0)\n"
    "  rerank.scatter.window           scatter: positions the caps hold over (default 0 = off)\n"
    "  rerank.scatter.max_per_category scatter: items of one category per window (default 0 = "
    "off)\n"
    "  rerank.scatter.max_per_author   scatter: items of one author per window (default 0 = off)\n"
    "  rerank.scatter.author_min_distance  scatter: positions between one author's items\n"
    "                                  (default 0 = off)\n"
    "  rerank.scatter.max_steps        scatter: search budget, candidate checks (default 1000000)\n"
    "  rerank.item_vectors.enabled     load the two-tower item vectors (default true)\n"
    "  rerank.item_vectors.model_dir   where two-tower.latest is (default: --model-dir)\n"
    "  rerank.item_vectors.reload_ms   how often two-tower.latest is checked (default 1000)\n"
    "  rerank.max_candidates           largest candidate list accepted (default 5000)\n"
    "  rerank.max_count                largest count a request may ask for (default 1000)\n";

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    (void)redis;
    (void)metrics;
    return cascade_rerank_create_dir(o->config, o->model_dir, err, errlen);
}

static void destroy_stage(void *stage)
{
    cascade_rerank_destroy(stage);
}

static const struct cascade_service_stage stage = {
    .name = "rerank",
    .default_port = 50055,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.ReRank",
    .needs_redis = 0,
    .create = create_stage,
    .methods = cascade_rerank_methods,
    .destroy = destroy_stage,
};

int main(int argc, char **argv)
{
    cascade_ml_init(); /* one OpenBLAS thread per worker (ml.h) */
    return cascade_service_main(&stage, argc, argv);
}
