/* Bulk writes to Redis for the offline jobs: commands are queued on one
 * connection and their replies read back every `batch` commands, so a load
 * costs one round trip per few thousand commands. The first failure (a
 * connection error or an error reply) is kept with the command that caused it. */
#ifndef CASCADE_BUILDER_PIPELINE_H
#define CASCADE_BUILDER_PIPELINE_H

#include <stddef.h>

#include "redis.h"

struct cascade_pipeline {
    cascade_redis *r; /* borrowed */
    size_t batch;     /* commands per round trip */
    size_t queued;    /* appended, replies not read yet */
    size_t total;     /* commands sent so far */
    int rc;           /* first failure, 0 if none */
    char err[512];
};

/* Start a pipeline on r (borrowed; batch 0 means 2000). */
void cascade_pipeline_init(struct cascade_pipeline *p, cascade_redis *r, size_t batch);

/* Queue one command (argv is copied by hiredis). Reads the replies when the
 * batch is full. Returns 0 or the pipeline's first failure (sticky). */
int cascade_pipeline_add(struct cascade_pipeline *p, int argc, const char **argv,
                         const size_t *argvlen);

/* Read every outstanding reply. Returns 0 or the first failure; p->err says
 * what failed ("redis 127.0.0.1:6379: ... (ZADD cascade:hot)"). */
int cascade_pipeline_flush(struct cascade_pipeline *p);

#endif
