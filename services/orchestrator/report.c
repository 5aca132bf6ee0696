/* Degrade reasons and debug trace of one Recommend call, kept in arena-backed
 * growing arrays so the response can point at them without copies. */
#include "report.h"

#include <string.h>

#include "error.h"

void cascade_orch_report_init(struct cascade_orch_report *r, cascade_arena *arena, bool want_trace)
{
    memset(r, 0, sizeof *r);
    r->arena = arena;
    r->want_trace = want_trace;
}

/* An arena array of pointers with room for one more element: `items` itself
 * when it has room, else a copy twice as large; NULL when out of memory. */
static void *grow(cascade_arena *arena, void *items, size_t n, size_t *cap)
{
    if (n < *cap)
        return items;
    size_t new_cap = *cap ? 2 * *cap : 8;
    void *p = cascade_arena_alloc(arena, new_cap * sizeof(void *));
    if (p == NULL)
        return NULL;
    if (n)
        memcpy(p, items, n * sizeof(void *));
    *cap = new_cap;
    return p;
}

static uint32_t clamp_u32(int64_t v)
{
    if (v < 0)
        return 0;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int add_trace(struct cascade_orch_report *r, const struct cascade_orch_outcome *o)
{
    Cascade__V1__StageTrace *t = cascade_arena_alloc(r->arena, sizeof *t);
    Cascade__V1__StageTrace **trace = grow(r->arena, r->trace, r->n_trace, &r->cap_trace);
    if (t == NULL || trace == NULL)
        return CASCADE_ENOMEM;
    r->trace = trace;
    cascade__v1__stage_trace__init(t);
    t->stage = cascade_arena_strdup(r->arena, o->stage);
    t->message = cascade_arena_strdup(r->arena, o->message ? o->message : "");
    if (t->stage == NULL || t->message == NULL)
        return CASCADE_ENOMEM;
    t->status_code = (int32_t)o->status;
    t->latency_us = clamp_u32(o->latency_us);
    t->items_in = clamp_u32((int64_t)o->items_in);
    t->items_out = clamp_u32((int64_t)o->items_out);
    t->degraded = o->degraded;
    if (o->order && o->n_order > 0) {
        size_t n =
            o->n_order < CASCADE_ORCH_TRACE_IDS_MAX ? o->n_order : CASCADE_ORCH_TRACE_IDS_MAX;
        if (!(t->item_ids = cascade_arena_alloc(r->arena, n * sizeof *t->item_ids)))
            return CASCADE_ENOMEM;
        for (size_t i = 0; i < n; i++)
            t->item_ids[i] = o->order[i]->item_id;
        t->n_item_ids = n;
    }
    r->trace[r->n_trace++] = t;
    return 0;
}

/* The caller-facing reason of a degraded outcome: stage and a fixed code. */
static char *public_reason(cascade_arena *arena, const struct cascade_orch_outcome *o)
{
    if (o->status != GRPC_STATUS_OK)
        return cascade_arena_printf(arena, "%s: %s", o->stage, cascade_grpc_status_name(o->status));
    return cascade_arena_printf(arena, "%s: %s", o->stage,
                                o->code && o->code[0] ? o->code : "degraded");
}

static int add_reason(struct cascade_orch_report *r, const struct cascade_orch_outcome *o)
{
    const char *msg = o->message && o->message[0] ? o->message : "no details";
    char *reason = public_reason(r->arena, o);
    char *detail = reason ? cascade_arena_printf(r->arena, "%s: %s", reason, msg) : NULL;
    size_t cap = r->cap_reasons;
    char **reasons = grow(r->arena, r->reasons, r->n_reasons, &r->cap_reasons);
    char **details = grow(r->arena, r->details, r->n_reasons, &cap);
    if (detail == NULL || reasons == NULL || details == NULL)
        return CASCADE_ENOMEM;
    r->reasons = reasons;
    r->details = details;
    r->reasons[r->n_reasons] = reason;
    r->details[r->n_reasons++] = detail;
    r->degraded = true;
    return 0;
}

int cascade_orch_report_add(struct cascade_orch_report *r, const struct cascade_orch_outcome *o)
{
    int rc = 0;
    if (r->want_trace && (rc = add_trace(r, o)))
        return rc;
    if (o->degraded)
        rc = add_reason(r, o);
    return rc;
}

/* True when gRPC's peer string names a loopback or Unix-socket address. */
static bool peer_is_local(const char *peer)
{
    static const char *const local[] = {
        "unix:",           "unix-abstract:",    "ipv4:127.",          "ipv6:[::1]:",
        "ipv6:%5B::1%5D:", "ipv6:[::ffff:127.", "ipv6:%5B::ffff:127."};
    if (peer == NULL)
        return false;
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strncmp(peer, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}

/* Equal strings, in time that depends on the lengths only, so a caller
 * cannot find the token a byte at a time. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i < lb ? i : 0];
    return lb > 0 && diff == 0;
}

bool cascade_orch_report_trace_allowed(bool debug_enabled, bool loopback_ok, const char *token,
                                       const char *peer, const char *caller_token)
{
    if (!debug_enabled)
        return false;
    if (loopback_ok && peer_is_local(peer))
        return true;
    return token && token[0] && caller_token && same_secret(token, caller_token);
}
