/* cascade-filter: serves cascade.v1.Filter (Filter, RecordExposure) over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
#include <stdio.h>

#include "filter.h"
#include "service.h"

static const char extra_usage[] =
    "Filter config keys:\n"
    "  filter.exposure.window_seconds  length of one exposure window (default 86400)\n"
    "  filter.exposure.windows         windows checked; exposures expire after them (default 30)\n"
    "  filter.exposure.expected_items  exposures per window the filter is sized for (default "
    "5000)\n"
    "  filter.exposure.fp_rate         target false-positive rate (default 0.001)\n"
    "  filter.max_candidates           largest candidate list accepted (default 20000)\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    cascade_filter *filter = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("filter", 50052, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
    if (!(redis = cascade_redis_pool_create(&ropts))) {
        fprintf(stderr, "cascade-filter: out of memory creating the Redis pool\n");
        goto out;
    }
    if (!(filter = cascade_filter_create(opts.config, redis, opts.ns, metrics, err, sizeof err))) {
        fprintf(stderr, "cascade-filter: %s\n", err);
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_filter_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.Filter", methods, n_methods, filter);
out:
    cascade_filter_destroy(filter);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
