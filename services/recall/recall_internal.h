/* Internals shared by the Recall stage's files: the stage struct, the channel
 * function type and the channel functions the registry (recall.c) lists.
 * Not part of the stage API. */
#ifndef CASCADE_RECALL_INTERNAL_H
#define CASCADE_RECALL_INTERNAL_H

#include <stdbool.h>

#include "recall.h"

/* Upper bound on registered channels (the registry is a static table). */
#define CASCADE_RECALL_MAX_CHANNELS 32

struct cascade_recall {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    uint32_t max_quota;
    bool enabled[CASCADE_RECALL_MAX_CHANNELS]; /* by registry index */
    /* itemcf */
    uint32_t itemcf_last_n;
    uint32_t itemcf_neighbours;
};

/* Everything a channel gets for one request. */
struct cascade_recall__channel_args {
    const cascade_recall *recall;
    cascade_redis *redis;
    cascade_arena *arena;
    int64_t deadline_ms;
    const Cascade__V1__RecallRequest *req;
    const char *user_id;
    size_t quota;
    char *err;
    size_t errlen;
};

/* A channel fills out (best first, at most args->quota) and returns 0, or a
 * negative code with a message in args->err. */
typedef int (*cascade_recall__channel_fn)(const struct cascade_recall__channel_args *args,
                                          struct cascade_recall_hits *out);

/* Channels (one file each). */
int cascade_recall__hot(const struct cascade_recall__channel_args *args,
                        struct cascade_recall_hits *out);
int cascade_recall__itemcf(const struct cascade_recall__channel_args *args,
                           struct cascade_recall_hits *out);

/* Turn a failed store call into EUNAVAILABLE (ENOMEM stays) with
 * "<channel>: <redis error>" in err. */
int cascade_recall__store_error(cascade_redis *redis, int rc, const char *channel, char *err,
                                size_t errlen);

#endif
