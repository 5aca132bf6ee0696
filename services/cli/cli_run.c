/* The calls behind cascade-cli's commands: one unary call (or health check)
 * with a deadline, results to stdout, failures as
 * "cascade-cli: <addr>: <STATUS>: <message>" with a non-zero exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "cli.h"
#include "error.h"
#include "redis.h"
#include "rpc.h"

static int call_failed(FILE *err, const struct cascade_cli_args *a,
                       const struct cascade_rpc_call *call)
{
    fprintf(err, "cascade-cli: %s: %s: %s\n", a->addr, cascade_grpc_status_name(call->status),
            call->status_message && call->status_message[0] ? call->status_message : "no details");
    return CASCADE_CLI_FAILED;
}

static int run_recommend(const struct cascade_cli_args *a, cascade_rpc_channel *ch,
                         cascade_arena *arena, FILE *out, FILE *err)
{
    Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
    Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    user.user_id = (char *)a->user;
    user.city = a->city;
    if (a->geohash)
        user.geohash = (char *)a->geohash;
    if (a->request_id)
        user.request_id = (char *)a->request_id;
    user.device = "cli";
    Cascade__V1__Slot slots[CASCADE_CLI_SLOTS_MAX];
    Cascade__V1__Slot *slot_ptrs[CASCADE_CLI_SLOTS_MAX];
    for (size_t i = 0; i < a->n_slots; i++) {
        cascade__v1__slot__init(&slots[i]);
        slots[i].position = a->slots[i].position;
        slots[i].item_id = a->slots[i].item_id;
        slots[i].source = (char *)a->slots[i].source;
        slot_ptrs[i] = &slots[i];
    }
    req.user = &user;
    req.count = a->count;
    req.debug = a->debug;
    req.slots = slot_ptrs;
    req.n_slots = a->n_slots;
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = "/cascade.v1.Recommender/Recommend",
        .request = &req.base,
        .response_type = &cascade__v1__recommend_response__descriptor,
        .deadline_ms = cascade_now_ms() + a->timeout_ms,
        .request_id = a->request_id,
    };
    if (cascade_rpc_call_unary(&call, arena) != 0)
        return call_failed(err, a, &call);
    cascade_cli_print_recommendation(
        out, a->user, (const Cascade__V1__RecommendResponse *)call.response, a->debug);
    return CASCADE_CLI_OK;
}

static int run_feedback(const struct cascade_cli_args *a, cascade_rpc_channel *ch,
                        cascade_arena *arena, FILE *out, FILE *err)
{
    Cascade__V1__Event ev = CASCADE__V1__EVENT__INIT;
    Cascade__V1__Event *events[1] = {&ev};
    Cascade__V1__FeedbackRequest req = CASCADE__V1__FEEDBACK_REQUEST__INIT;
    ev.user_id = (char *)a->user;
    ev.item_id = a->item;
    ev.type = (Cascade__V1__EventType)a->event_type;
    ev.value = a->value;
    if (a->request_id)
        ev.request_id = (char *)a->request_id;
    req.events = events;
    req.n_events = 1;
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = "/cascade.v1.Recommender/Feedback",
        .request = &req.base,
        .response_type = &cascade__v1__feedback_response__descriptor,
        .deadline_ms = cascade_now_ms() + a->timeout_ms,
        .request_id = a->request_id,
    };
    if (cascade_rpc_call_unary(&call, arena) != 0)
        return call_failed(err, a, &call);
    const Cascade__V1__FeedbackResponse *resp =
        (const Cascade__V1__FeedbackResponse *)call.response;
    fprintf(out, "accepted %u event%s\n", resp->accepted, resp->accepted == 1 ? "" : "s");
    return CASCADE_CLI_OK;
}

static int run_item_add(const struct cascade_cli_args *a, cascade_rpc_channel *ch,
                        cascade_arena *arena, FILE *out, FILE *err)
{
    const struct cascade_cli_item *in = &a->new_item;
    Cascade__V1__NewItem it = CASCADE__V1__NEW_ITEM__INIT;
    Cascade__V1__NewItem *items[1] = {&it};
    Cascade__V1__PutItemsRequest req = CASCADE__V1__PUT_ITEMS_REQUEST__INIT;
    it.item_id = a->item;
    it.author_id = in->author;
    it.category = in->category;
    it.tags = (uint32_t *)in->tags;
    it.n_tags = in->n_tags;
    it.created_at_s = in->created_at;
    it.geohash = (char *)(a->geohash ? a->geohash : "");
    it.city = a->city;
    it.media_type = in->media_type;
    it.duration_s = in->duration_s;
    req.items = items;
    req.n_items = 1;
    struct cascade_rpc_call call = {
        .channel = ch,
        .method = "/cascade.v1.Recommender/PutItems",
        .request = &req.base,
        .response_type = &cascade__v1__put_items_response__descriptor,
        .deadline_ms = cascade_now_ms() + a->timeout_ms,
        .request_id = a->request_id,
    };
    if (cascade_rpc_call_unary(&call, arena) != 0)
        return call_failed(err, a, &call);
    const Cascade__V1__PutItemsResponse *resp =
        (const Cascade__V1__PutItemsResponse *)call.response;
    fprintf(out, "wrote item %llu (revision %llu)\n", (unsigned long long)a->item,
            (unsigned long long)resp->revision);
    return CASCADE_CLI_OK;
}

static const char *serving_status_name(int status)
{
    switch (status) {
    case 1:
        return "SERVING";
    case 2:
        return "NOT_SERVING";
    case 3:
        return "SERVICE_UNKNOWN";
    default:
        return "UNKNOWN";
    }
}

static int run_health(const struct cascade_cli_args *a, cascade_rpc_channel *ch, FILE *out,
                      FILE *err)
{
    char msg[512] = "";
    int status = 0;
    if (cascade_rpc_health_check(ch, a->service, cascade_now_ms() + a->timeout_ms, &status, msg,
                                 sizeof msg) != 0) {
        /* The runtime's message already names the target and the status. */
        fprintf(err, "cascade-cli: %s\n", msg[0] ? msg : "health check failed");
        return CASCADE_CLI_FAILED;
    }
    fprintf(out, "%s\n", serving_status_name(status));
    return status == 1 ? CASCADE_CLI_OK : CASCADE_CLI_FAILED;
}

/* A stack started with a bearer token wants it on every call
 * (cascade_rpc_channel_auth_from_env). */
static int cli_set_token(cascade_rpc_channel *ch, FILE *err)
{
    char msg[600];
    if (cascade_rpc_channel_auth_from_env(ch, msg, sizeof msg) != 0) {
        fprintf(err, "cascade-cli: %s\n", msg);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_cli_run(const struct cascade_cli_args *a, FILE *out, FILE *err)
{
    int code = CASCADE_CLI_FAILED;
    cascade_arena *arena = cascade_arena_create(0);
    char why[700] = "out of memory";
    cascade_rpc_channel *ch = cascade_rpc_channel_create_env(a->addr, 64u << 20, why, sizeof why);
    if (arena == NULL || ch == NULL) {
        fprintf(err, "cascade-cli: %s: cannot create a channel: %s\n", a->addr, why);
        goto out;
    }
    if (cli_set_token(ch, err) != 0) {
        code = CASCADE_CLI_USAGE;
        goto out;
    }
    switch (a->command) {
    case CASCADE_CLI_RECOMMEND:
        code = run_recommend(a, ch, arena, out, err);
        break;
    case CASCADE_CLI_FEEDBACK:
        code = run_feedback(a, ch, arena, out, err);
        break;
    case CASCADE_CLI_HEALTH:
        code = run_health(a, ch, out, err);
        break;
    case CASCADE_CLI_ITEM_ADD:
        code = run_item_add(a, ch, arena, out, err);
        break;
    }
out:
    cascade_rpc_channel_destroy(ch);
    cascade_arena_destroy(arena);
    return code;
}
