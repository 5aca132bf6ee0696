/* Arena-allocated request pieces for the stage tests (see messages.h). An
 * allocation failure aborts: a test cannot go on without its input. */
#include "messages.h"

#include <stdio.h>
#include <stdlib.h>

#include "cascade/v1/recall.pb-c.h"

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "test messages: out of arena memory\n");
        abort();
    }
    return p;
}

Cascade__V1__UserContext *test_user_context(cascade_arena *a, const char *user_id,
                                            int64_t request_time_s)
{
    if (!user_id)
        return NULL;
    Cascade__V1__UserContext *u = must(cascade_arena_alloc(a, sizeof *u));
    cascade__v1__user_context__init(u);
    u->user_id = must(cascade_arena_strdup(a, user_id));
    u->request_time_s = request_time_s;
    return u;
}

Cascade__V1__Candidate **test_candidates(cascade_arena *a, const uint64_t *ids, size_t n)
{
    Cascade__V1__Candidate **c = must(cascade_arena_calloc(a, n + 1, sizeof *c));
    for (size_t i = 0; i < n; i++) {
        c[i] = must(cascade_arena_alloc(a, sizeof *c[i]));
        cascade__v1__candidate__init(c[i]);
        c[i]->item_id = ids[i];
    }
    return c;
}

Cascade__V1__ExperimentContext *test_experiment(cascade_arena *a, const char *layer,
                                                const char *experiment, const char *key,
                                                const char *value)
{
    Cascade__V1__ExperimentContext *e = must(cascade_arena_alloc(a, sizeof *e));
    Cascade__V1__LayerAssignment *l = must(cascade_arena_alloc(a, sizeof *l));
    Cascade__V1__LayerAssignment__ParamsEntry *p = must(cascade_arena_alloc(a, sizeof *p));
    cascade__v1__experiment_context__init(e);
    cascade__v1__layer_assignment__init(l);
    cascade__v1__layer_assignment__params_entry__init(p);
    p->key = must(cascade_arena_strdup(a, key));
    p->value = must(cascade_arena_strdup(a, value));
    l->layer = must(cascade_arena_strdup(a, layer));
    l->experiment = must(cascade_arena_strdup(a, experiment));
    l->n_params = 1;
    l->params = must(cascade_arena_calloc(a, 1, sizeof *l->params));
    l->params[0] = p;
    e->bucket_count = 1000;
    e->n_layers = 1;
    e->layers = must(cascade_arena_calloc(a, 1, sizeof *e->layers));
    e->layers[0] = l;
    return e;
}

int test_rpc_count_handler(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response)
{
    (void)request;
    atomic_int *calls = service;
    atomic_fetch_add(calls, 1);
    Cascade__V1__RecallResponse *resp =
        must(cascade_arena_alloc(cascade_rpc_ctx_arena(ctx), sizeof(*resp)));
    cascade__v1__recall_response__init(resp);
    *response = &resp->base;
    return 0;
}
