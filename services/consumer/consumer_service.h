/* The cascade-consumer process around the library: one loop thread with
 * its own Redis connection that creates the groups (retrying while Redis is
 * away) and then runs cascade_consumer_step until stopped. Errors are
 * logged and retried after a pause; nothing here exits the process. */
#ifndef CASCADE_CONSUMER_SERVICE_H
#define CASCADE_CONSUMER_SERVICE_H

#include "consumer.h"
#include "redis.h"

typedef struct cascade_consumer_loop cascade_consumer_loop;

/* Start the loop: o and ropts are copied (ropts' strings must outlive the
 * loop), block_ms is the XREADGROUP wait (the connection's command timeout
 * is raised above it). Returns NULL with the problem in err. */
cascade_consumer_loop *cascade_consumer_loop_start(const struct cascade_consumer_opts *o,
                                                   const struct cascade_redis_opts *ropts,
                                                   int block_ms, cascade_metrics *m, char *err,
                                                   size_t errlen);

/* Whether the loop can work: true once it reached Redis (the groups are
 * ready) and while its last Redis operation did not fail for want of a
 * connection or an answer (an error reply keeps it true). False before the
 * first contact and NULL-safe. Thread-safe (an atomic read); the service's
 * grpc.health.v1 status follows it. */
bool cascade_consumer_loop_healthy(const cascade_consumer_loop *l);

/* Stop the loop (it finishes the batch in hand, at most block_ms plus one
 * apply later), join it and free everything. NULL-safe. */
void cascade_consumer_loop_stop(cascade_consumer_loop *l);

#endif
