/* cascade-recall: serves cascade.v1.Recall (channels hot and itemcf) over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include <stdio.h>

#include "recall.h"
#include "service.h"

static const char extra_usage[] =
    "Recall config keys:\n"
    "  recall.channels.<name>.enabled  switch a channel (default true; channels: hot, itemcf)\n"
    "  recall.itemcf.last_n            recent interactions expanded (default 50)\n"
    "  recall.itemcf.neighbours        neighbours per interaction (default 50)\n"
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
    if (!(recall = cascade_recall_create(opts.config, redis, opts.ns, err, sizeof err))) {
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
