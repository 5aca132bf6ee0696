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

/* Stop the loop (it finishes the batch in hand, at most block_ms plus one
 * apply later), join it and free everything. NULL-safe. */
void cascade_consumer_loop_stop(cascade_consumer_loop *l);

#endif
