/* cascade-filter: serves cascade.v1.Filter (Filter, RecordExposure) over gRPC.
 * Thin wrapper: options, Redis pool, the stage, the run loop. */
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

static void *create_stage(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                          cascade_metrics *metrics, char *err, size_t errlen)
{
    return cascade_filter_create(o->config, redis, o->ns, metrics, err, errlen);
}

static void destroy_stage(void *stage)
{
    cascade_filter_destroy(stage);
}

static const struct cascade_service_stage stage = {
    .name = "filter",
    .default_port = 50052,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.Filter",
    .needs_redis = 1,
    .create = create_stage,
    .methods = cascade_filter_methods,
    .destroy = destroy_stage,
};

int main(int argc, char **argv)
{
    return cascade_service_main(&stage, argc, argv);
}
