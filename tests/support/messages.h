/* Request pieces the stage tests build over and over: a user context, a list
 * of bare candidates, and an experiment context with one parameter. Every
 * message is allocated in the caller's arena (freed with it). */
#ifndef CASCADE_TEST_MESSAGES_H
#define CASCADE_TEST_MESSAGES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cascade/v1/common.pb-c.h"
#include "rpc.h"

/* A user context with user_id (copied) and request_time_s; NULL when user_id
 * is NULL, to test a request without one. */
Cascade__V1__UserContext *test_user_context(cascade_arena *a, const char *user_id,
                                            int64_t request_time_s);

/* n candidates (n + 1 slots, the last NULL) with item ids ids[0..n) and every
 * other field at its default. */
Cascade__V1__Candidate **test_candidates(cascade_arena *a, const uint64_t *ids, size_t n);

/* An experiment context (1000 buckets) with one layer `layer` assigned to
 * `experiment`, whose only parameter is key = value (both copied). */
Cascade__V1__ExperimentContext *test_experiment(cascade_arena *a, const char *layer,
                                                const char *experiment, const char *key,
                                                const char *value);

/* An RPC handler for /cascade.v1.Recall/Recall that counts the calls that
 * reached it in *(atomic_int *)service and answers an empty RecallResponse;
 * for tests of the RPC runtime's gates (token, TLS). The count is atomic: the
 * handler runs on the server's threads and the test reads it on its own. */
int test_rpc_count_handler(void *service, cascade_rpc_ctx *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage **response);

#endif
