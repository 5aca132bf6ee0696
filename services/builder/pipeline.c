/* Batched, pipelined Redis writes with a sticky first error. */
#include "pipeline.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

#define DEFAULT_BATCH 2000

void cascade_pipeline_init(struct cascade_pipeline *p, cascade_redis *r, size_t batch)
{
    memset(p, 0, sizeof(*p));
    p->r = r;
    p->batch = batch ? batch : DEFAULT_BATCH;
}

static void remember(struct cascade_pipeline *p, int rc, const char *what)
{
    if (p->rc)
        return;
    p->rc = rc;
    snprintf(p->err, sizeof(p->err), "%s (%s)", cascade_redis_error(p->r), what);
}

int cascade_pipeline_flush(struct cascade_pipeline *p)
{
    while (p->queued > 0) {
        redisReply *rep = NULL;
        int rc = cascade_redis_get_reply(p->r, &rep);
        p->queued--;
        if (rep)
            freeReplyObject(rep);
        if (rc != 0) {
            remember(p, rc, "reading pipelined replies");
            if (rc == CASCADE_EUNAVAILABLE) {
                p->queued = 0; /* the connection and its replies are gone */
                break;
            }
        }
    }
    return p->rc;
}

int cascade_pipeline_add(struct cascade_pipeline *p, int argc, const char **argv,
                         const size_t *argvlen)
{
    if (p->rc)
        return p->rc;
    int rc = cascade_redis_append_argv(p->r, argc, argv, argvlen);
    if (rc != 0) {
        char what[128];
        snprintf(what, sizeof(what), "%.*s %.*s", (int)argvlen[0], argv[0],
                 argc > 1 ? (int)(argvlen[1] < 80 ? argvlen[1] : 80) : 0, argc > 1 ? argv[1] : "");
        remember(p, rc, what);
        p->queued = 0;
        return rc;
    }
    p->queued++;
    p->total++;
    if (p->queued >= p->batch)
        return cascade_pipeline_flush(p);
    return 0;
}
