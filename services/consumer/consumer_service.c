/* cascade-consumer's loop thread (consumer_service.h). */
#include "consumer_service.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"

struct cascade_consumer_loop {
    cascade_consumer *consumer;
    cascade_redis *redis;
    int block_ms;
    atomic_bool stop;
    atomic_bool redis_ok; /* the last Redis operation reached Redis */
    pthread_t thread;
};

/* Sleep ms in 50 ms slices, returning early when stopped. */
static void pause_ms(cascade_consumer_loop *l, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&l->stop); waited += 50)
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
}

/* A failure for want of Redis (no connection, or no answer in time), as
 * opposed to an error reply: health turns NOT_SERVING on these only. */
static bool unreachable(int rc)
{
    return rc == CASCADE_EUNAVAILABLE || rc == CASCADE_ETIMEDOUT;
}

static void *loop_main(void *arg)
{
    cascade_consumer_loop *l = arg;
    bool grouped = false;
    int backoff_ms = 100;
    while (!atomic_load(&l->stop)) {
        int rc = grouped ? cascade_consumer_step(l->consumer, l->redis, l->block_ms, NULL)
                         : cascade_consumer_ensure_groups(l->consumer, l->redis);
        if (rc == 0) {
            if (!grouped)
                CASCADE_INFO(NULL, "consumer: consumer group ready");
            grouped = true;
            backoff_ms = 100;
            atomic_store(&l->redis_ok, true);
            continue;
        }
        const char *why = cascade_redis_error(l->redis);
        if (unreachable(rc))
            atomic_store(&l->redis_ok, false);
        /* A Redis that came back empty (restarted without its data) has
         * neither the streams (XAUTOCLAIM: "no such key") nor the group
         * (NOGROUP): create them again rather than fail every step. */
        if (grouped && why && (strstr(why, "NOGROUP") || strstr(why, "no such key")))
            grouped = false;
        CASCADE_WARN(NULL, "consumer: %s (retrying in %d ms)", why, backoff_ms);
        pause_ms(l, backoff_ms);
        backoff_ms = backoff_ms < 3200 ? backoff_ms * 2 : 5000;
    }
    return NULL;
}

bool cascade_consumer_loop_healthy(const cascade_consumer_loop *l)
{
    return l != NULL && atomic_load(&((cascade_consumer_loop *)l)->redis_ok);
}

cascade_consumer_loop *cascade_consumer_loop_start(const struct cascade_consumer_opts *o,
                                                   const struct cascade_redis_opts *ropts,
                                                   int block_ms, cascade_metrics *m, char *err,
                                                   size_t errlen)
{
    cascade_consumer_loop *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "consumer: out of memory");
        return NULL;
    }
    struct cascade_redis_opts r = *ropts;
    if (r.command_timeout_ms < block_ms + 2000)
        r.command_timeout_ms = block_ms + 2000; /* a blocked read is not a timeout */
    l->block_ms = block_ms;
    atomic_init(&l->stop, false);
    atomic_init(&l->redis_ok, false);
    if ((l->consumer = cascade_consumer_create(o, m, err, errlen)) == NULL)
        goto fail;
    if ((l->redis = cascade_redis_create(&r)) == NULL) {
        snprintf(err, errlen, "consumer: out of memory creating the Redis connection");
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        snprintf(err, errlen, "consumer: cannot start the loop thread");
        goto fail;
    }
    return l;
fail:
    cascade_redis_destroy(l->redis);
    cascade_consumer_destroy(l->consumer);
    free(l);
    return NULL;
}

void cascade_consumer_loop_stop(cascade_consumer_loop *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    cascade_redis_destroy(l->redis);
    cascade_consumer_destroy(l->consumer);
    free(l);
}
