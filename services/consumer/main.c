/* cascade-consumer: the closed loop's stream consumer (docs/closed-loop.md).
 * Thin wrapper: options, metrics and health through the service runtime,
 * the consumer loop thread (consumer_service.h) as the "stage". */
#include <stdio.h>
#include <unistd.h>

#include "consumer_service.h"
#include "service.h"

static const char extra_usage[] =
    "Consumer config keys:\n"
    "  consumer.name           consumer name in the group (default <hostname>-<pid>)\n"
    "  consumer.group          consumer group (default cascade-consumer)\n"
    "  consumer.batch          entries per read and stream (default 200)\n"
    "  consumer.block_ms       XREADGROUP wait when idle (default 1000)\n"
    "  consumer.claim_idle_ms  re-claim entries pending this long (default 30000)\n"
    "  consumer.half_life_s    half-life of the decayed counters (default 86400)\n"
    "  consumer.mark_ttl_s     how long applied-entry marks are kept (default 604800)\n"
    "  consumer.user_events_cap  events kept per user for the online features (default 2000)\n"
    "  consumer.user_events_ttl_s  TTL of a user's event list (default 259200)\n"
    "  consumer.data_dir       daily partitions under DIR/events/ (default off)\n";

static void *create_loop(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                         cascade_metrics *metrics, char *err, size_t errlen)
{
    struct cascade_consumer_opts co;
    char name[CASCADE_CONSUMER_NAME_MAX], host[40] = "consumer";
    const char *configured;
    int64_t block_ms;
    (void)redis;
    if (cascade_consumer_config(o->config, &co, err, errlen) ||
        cascade_config_int(o->config, "consumer.block_ms", 1000, 0, 30000, &block_ms, err,
                           errlen) ||
        cascade_config_string(o->config, "consumer.name", "", &configured, err, errlen))
        return NULL;
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
    co.ns = o->ns;
    co.name = configured[0] ? configured : name;
    struct cascade_redis_opts ropts = cascade_service_redis_opts(o);
    return cascade_consumer_loop_start(&co, &ropts, (int)block_ms, metrics, err, errlen);
}

static const struct cascade_rpc_method *no_methods(size_t *n)
{
    *n = 0;
    return NULL;
}

static void destroy_loop(void *loop)
{
    cascade_consumer_loop_stop(loop);
}

static bool loop_healthy(void *loop)
{
    return cascade_consumer_loop_healthy(loop);
}

static const struct cascade_service_stage stage = {
    .name = "consumer",
    .default_port = 50056,
    .extra_usage = extra_usage,
    .grpc_service = "cascade.v1.Consumer",
    .needs_redis = 0,
    .create = create_loop,
    .methods = no_methods,
    .destroy = destroy_loop,
    .healthy = loop_healthy,
};

int main(int argc, char **argv)
{
    return cascade_service_main(&stage, argc, argv);
}
