/* Serve log: formatting of the serve record's fields and the one XADD that
 * writes it, queued in the caller's pipeline (serve_log.h; the format is documented in
 * docs/closed-loop.md). */
#include "serve_log.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "store.h"

/* Longest "item:position:reason:rank:rerank," entry: 20 + 1 + 20 + 1 + 1 + 1
 * + 2 × (a %.6g float, at most 13) + 1 + 1 separator, rounded up. */
#define ITEM_ENTRY_MAX 80

char *cascade_serve_log_format_exp(const Cascade__V1__ExperimentContext *exp, cascade_arena *arena)
{
    size_t len = 1, off = 0;
    if (exp == NULL || exp->n_layers == 0)
        return cascade_arena_strdup(arena, "");
    for (size_t i = 0; i < exp->n_layers; i++) {
        const Cascade__V1__LayerAssignment *l = exp->layers[i];
        len += strlen(l->layer ? l->layer : "") + strlen(l->experiment ? l->experiment : "") + 14;
    }
    char *s = cascade_arena_alloc(arena, len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < exp->n_layers; i++) {
        const Cascade__V1__LayerAssignment *l = exp->layers[i];
        off += (size_t)snprintf(s + off, len - off, "%s%s=%s@%u", i ? ";" : "",
                                l->layer ? l->layer : "", l->experiment ? l->experiment : "",
                                (unsigned)l->bucket);
    }
    return s;
}

char *cascade_serve_log_format_items(const struct cascade_serve_item *items, size_t n,
                                     cascade_arena *arena)
{
    size_t len = n * ITEM_ENTRY_MAX + 1, off = 0;
    char *s = cascade_arena_alloc(arena, len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, len - off, "%s%llu:%zu:%c:%.6g:%.6g", i ? "," : "",
                                (unsigned long long)items[i].item_id, i, items[i].reason,
                                (double)items[i].rank_score, (double)items[i].rerank_score);
    return s;
}

int cascade_serve_log_append(cascade_redis *r, const char *ns,
                             const struct cascade_serve_record *rec, uint32_t max_len,
                             cascade_arena *scratch, size_t *sent)
{
    char key[CASCADE_KEY_MAX], maxlen[16], ts[24];
    *sent = 0;
    if (rec->n_items == 0)
        return 0;
    if (max_len == 0) {
        cascade_redis__set_error(r, "serve log: max_len must be at least 1");
        return CASCADE_EINVAL;
    }
    char *exp = cascade_serve_log_format_exp(rec->exp, scratch);
    char *items = cascade_serve_log_format_items(rec->items, rec->n_items, scratch);
    if (exp == NULL || items == NULL) {
        cascade_redis__set_error(r, "serve log: out of memory formatting %zu items", rec->n_items);
        return CASCADE_ENOMEM;
    }
    snprintf(maxlen, sizeof maxlen, "%u", (unsigned)max_len);
    snprintf(ts, sizeof ts, "%lld", (long long)rec->ts_ms);
    const char *argv[] = {"XADD",   cascade_key_serves(key, ns),
                          "MAXLEN", "~",
                          maxlen,   "*",
                          "rid",    rec->request_id ? rec->request_id : "",
                          "user",   rec->user_id ? rec->user_id : "",
                          "ts_ms",  ts,
                          "exp",    exp,
                          "track",  rec->track ? rec->track : "",
                          "deg",    rec->degraded ? "1" : "0",
                          "items",  items};
    size_t argc = sizeof argv / sizeof *argv, argvlen[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    int rc = cascade_redis_append_argv(r, (int)argc, argv, argvlen);
    if (rc == 0)
        *sent = 1;
    return rc;
}
