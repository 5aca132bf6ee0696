/* cascade-recall: serves cascade.v1.Recall (every recall channel: CF, lists,
 * authors, cache, cold start) over gRPC. Thin wrapper: options, metrics
 * registry, Redis pool, the stage, the run loop. */
#include "recall.h"
#include "ml.h"
#include "service.h"

static const char extra_usage[] =
    "Recall config keys (docs/stages.md has the full table):\n"
    "  recall.channels.<name>.enabled  switch a channel (default true); channels: hot, itemcf,\n"
    "                                  swing, usercf, new, geo, city, follow_author,\n"
    "                                  interacted_author, similar_author, cache, interest, "
    "demo_hot,\n"
    "                                  two_tower\n"
    "  recall.channels.itemcf.last_n / .neighbours   (also swing) recent items x neighbours (50, "
    "50)\n"
    "  recall.channels.usercf.users / .last_n        similar users x their recent items (30, 20)\n"
    "  recall.channels.new.explore_share / .max_impressions  exploration share (0.3, 20)\n"
    "  recall.channels.new.explore_pool  per-user exploration drawn from pool·E least shown (8)\n"
    "  recall.channels.geo.precision / .per_cell     cell length, items per neighbour cell (5, "
    "50)\n"
    "  recall.channels.<author channel>.max_authors / .per_author, similar_author.sources\n"
    "  recall.channels.<new|geo|city|follow_author>.half_life_hours  recency score (24)\n"
    "  recall.channels.two_tower.nprobe / .last_n / .reload_ms / .model_dir  IVF lists probed,\n"
    "                                  history length, model reload check, model directory\n"
    "                                  (default: --model-dir)\n"
    "  experiment param recall.two_tower.model_version  a two-tower version in that directory\n"
    "                                  (as two-tower.latest names one) kept loaded for that arm\n"
    "  recall.generation_ttl_ms        how long a family's generation is cached (default 1000)\n"
    "  recall.list_cache.enabled / .max_entries / .max_bytes / .max_len  in-process cache of\n"
    "                                  generation lists (true, 100000, 67108864, 1000)\n"
    "  recall.max_quota                largest quota a request may ask for (default 5000)\n";

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    return cascade_recall_create(o->config, redis, o->ns, metrics, err, errlen);
}

static void destroy_stage(void *stage)
{
    cascade_recall_destroy(stage);
}

/* SIGHUP: the two_tower versions experiments name
 * (recall.two_tower.model_version) are loaded or released; the rest of the
 * recall section needs a restart. */
static int reload_stage(void *stage, const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_recall_pin_versions(stage, cfg, err, errlen);
}

static const struct cascade_service_stage stage = {
    .name = "recall",
    .default_port = 50051,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.Recall",
    .needs_redis = 1,
    .create = create_stage,
    .methods = cascade_recall_methods,
    .destroy = destroy_stage,
    .reload = reload_stage,
};

int main(int argc, char **argv)
{
    cascade_ml_init(); /* one OpenBLAS thread per worker (ml.h) */
    return cascade_service_main(&stage, argc, argv);
}
