/* cascade-recall: serves cascade.v1.Recall (every recall channel: CF, lists,
 * authors, cache, cold start) over gRPC. Thin wrapper: options, metrics
 * registry, Redis pool, the stage, the run loop. */
#include <stdio.h>

#include "recall.h"
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
    "  recall.channels.geo.precision / .per_cell     cell length, items per neighbour cell (5, "
    "50)\n"
    "  recall.channels.<author channel>.max_authors / .per_author, similar_author.sources\n"
    "  recall.channels.<new|geo|city|follow_author>.half_life_hours  recency score (24)\n"
    "  recall.channels.two_tower.nprobe / .last_n / .reload_ms / .model_dir  IVF lists probed,\n"
    "                                  history length, model reload check, model directory\n"
    "                                  (default: --model-dir)\n"
    "  recall.generation_ttl_ms        how long a family's generation is cached (default 1000)\n"
    "  recall.max_quota                largest quota a request may ask for (default 5000)\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    cascade_recall *recall = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("recall", 50051, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
    if (!(redis = cascade_redis_pool_create(&ropts))) {
        fprintf(stderr, "cascade-recall: out of memory creating the Redis pool\n");
        goto out;
    }
    if (!(recall = cascade_recall_create(opts.config, redis, opts.ns, metrics, err, sizeof err))) {
        fprintf(stderr, "cascade-recall: %s\n", err);
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_recall_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.Recall", methods, n_methods, recall);
out:
    cascade_recall_destroy(recall);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
