/* Channel list, merge weights and K values of cascade-eval (eval_channels.h),
 * from flags, from the config, or from the Recall stage's registry. */
#include "eval_channels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "orch_config.h"

int cascade_eval_channels_add(struct cascade_eval_run_opts *o, const char *name, char *err,
                              size_t errlen)
{
    size_t len = strlen(name);
    for (size_t c = 0; c < o->n_channels; c++)
        if (strcmp(o->channels[c], name) == 0)
            return 0;
    if (len == 0 || len >= CASCADE_EVAL_NAME_MAX) {
        snprintf(err, errlen, "channel name \"%.80s\": expected 1 to %d characters", name,
                 CASCADE_EVAL_NAME_MAX - 1);
        return CASCADE_EINVAL;
    }
    if (o->n_channels == CASCADE_EVAL_MAX_CHANNELS) {
        snprintf(err, errlen, "more than %d channels", CASCADE_EVAL_MAX_CHANNELS);
        return CASCADE_EINVAL;
    }
    memcpy(o->channels[o->n_channels++], name, len + 1);
    return 0;
}

/* Call fn on every comma-separated, space-trimmed token of list. */
static int each_token(const char *list, int (*fn)(void *ctx, char *tok), void *ctx)
{
    char buf[1024];
    char *save = NULL;
    int rc = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok_r(buf, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (n > 0)
            rc = fn(ctx, tok);
    }
    return rc;
}

struct tok_ctx {
    struct cascade_eval_run_opts *o;
    char *err;
    size_t errlen;
    uint32_t quota;
    const cascade_config *cfg;
};

static int add_token(void *ctx, char *tok)
{
    struct tok_ctx *t = ctx;
    return cascade_eval_channels_add(t->o, tok, t->err, t->errlen);
}

int cascade_eval_channels_parse(struct cascade_eval_run_opts *o, const char *list, char *err,
                                size_t errlen)
{
    struct tok_ctx t = {.o = o, .err = err, .errlen = errlen};
    o->n_channels = 0;
    int rc = each_token(list, add_token, &t);
    if (rc == 0 && o->n_channels == 0) {
        snprintf(err, errlen, "--channels: expected a comma-separated list of channels (known: %s)",
                 cascade_recall_channel_list());
        rc = CASCADE_EINVAL;
    }
    return rc;
}

static int add_enabled(void *ctx, char *tok)
{
    struct tok_ctx *t = ctx;
    char path[128];
    bool enabled = true;
    if (strcmp(tok, "cache") == 0)
        return 0; /* filled only by the live orchestrator: always empty offline */
    snprintf(path, sizeof path, "recall.channels.%s.enabled", tok);
    int rc = cascade_config_bool(t->cfg, path, true, &enabled, t->err, t->errlen);
    if (rc != 0 || !enabled)
        return rc;
    return cascade_eval_channels_add(t->o, tok, t->err, t->errlen);
}

int cascade_eval_channels_default(struct cascade_eval_run_opts *o, const cascade_config *cfg,
                                  char *err, size_t errlen)
{
    struct tok_ctx t = {.o = o, .err = err, .errlen = errlen, .cfg = cfg};
    o->n_channels = 0;
    return each_token(cascade_recall_channel_list(), add_enabled, &t);
}

static int add_merge(struct cascade_eval_run_opts *o, const char *name, double weight,
                     uint32_t quota, char *err, size_t errlen)
{
    for (size_t m = 0; m < o->n_merge; m++)
        if (strcmp(o->merge[m].name, name) == 0) {
            snprintf(err, errlen, "merge: channel %s is listed twice", name);
            return CASCADE_EINVAL;
        }
    int rc = cascade_eval_channels_add(o, name, err, errlen);
    if (rc != 0)
        return rc;
    struct cascade_eval_merge_channel *mc = &o->merge[o->n_merge++];
    snprintf(mc->name, sizeof mc->name, "%s", name);
    mc->weight = weight;
    mc->quota = quota;
    return 0;
}

/* "name=weight[:quota]" */
static int merge_token(void *ctx, char *tok)
{
    struct tok_ctx *t = ctx;
    char *eq = strchr(tok, '='), *end = NULL;
    double weight;
    unsigned long quota = t->quota;
    if (!eq)
        goto bad;
    *eq = '\0';
    errno = 0;
    weight = strtod(eq + 1, &end);
    if (errno || end == eq + 1 || !(weight >= 0))
        goto bad;
    if (*end == ':') {
        char *q = end + 1;
        errno = 0;
        quota = strtoul(q, &end, 10);
        if (errno || end == q || quota == 0 || quota > UINT32_MAX)
            goto bad;
    }
    if (*end != '\0')
        goto bad;
    return add_merge(t->o, tok, weight, (uint32_t)quota, t->err, t->errlen);
bad:
    snprintf(t->err, t->errlen,
             "--merge: expected name=weight[:quota] with weight >= 0 and quota >= 1, got '%s%s%s'",
             tok, eq ? "=" : "", eq ? eq + 1 : "");
    return CASCADE_EINVAL;
}

int cascade_eval_merge_parse(struct cascade_eval_run_opts *o, const char *spec,
                             uint32_t default_quota, char *err, size_t errlen)
{
    struct tok_ctx t = {.o = o, .err = err, .errlen = errlen, .quota = default_quota};
    o->n_merge = 0;
    int rc = each_token(spec, merge_token, &t);
    if (rc == 0 && o->n_merge == 0) {
        snprintf(err, errlen, "--merge: expected name=weight[:quota],...");
        rc = CASCADE_EINVAL;
    }
    return rc;
}

int cascade_eval_merge_from_config(struct cascade_eval_run_opts *o, const cascade_config *cfg,
                                   char *err, size_t errlen)
{
    struct cascade_orch_config *oc = calloc(1, sizeof *oc);
    int rc = CASCADE_ENOMEM;
    o->n_merge = 0;
    if (!oc) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if ((rc = cascade_orch_config_parse(cfg, oc, err, errlen)) != 0)
        goto out;
    for (size_t c = 0; c < oc->n_channels && rc == 0; c++)
        rc = add_merge(o, oc->channels[c].name, oc->channels[c].weight, oc->channels[c].quota, err,
                       errlen);
out:
    free(oc);
    return rc;
}

void cascade_eval_merge_equal(struct cascade_eval_run_opts *o, uint32_t quota)
{
    o->n_merge = o->n_channels;
    for (size_t c = 0; c < o->n_channels; c++) {
        snprintf(o->merge[c].name, sizeof o->merge[c].name, "%s", o->channels[c]);
        o->merge[c].weight = 1.0;
        o->merge[c].quota = quota;
    }
}

static int k_token(void *ctx, char *tok)
{
    struct tok_ctx *t = ctx;
    struct cascade_eval_run_opts *o = t->o;
    char *end = NULL;
    errno = 0;
    unsigned long k = strtoul(tok, &end, 10);
    if (errno || end == tok || *end || k == 0 || k > 100000 || o->n_ks == CASCADE_EVAL_MAX_KS ||
        (o->n_ks > 0 && k <= o->ks[o->n_ks - 1])) {
        snprintf(t->err, t->errlen,
                 "--k: expected 1 to %d ascending values in 1..100000, got '%s' at position %zu",
                 CASCADE_EVAL_MAX_KS, tok, o->n_ks + 1);
        return CASCADE_EINVAL;
    }
    o->ks[o->n_ks++] = (size_t)k;
    return 0;
}

int cascade_eval_ks_parse(struct cascade_eval_run_opts *o, const char *list, char *err,
                          size_t errlen)
{
    struct tok_ctx t = {.o = o, .err = err, .errlen = errlen};
    o->n_ks = 0;
    int rc = each_token(list, k_token, &t);
    if (rc == 0 && o->n_ks == 0) {
        snprintf(err, errlen, "--k: expected values such as 50,100,200");
        rc = CASCADE_EINVAL;
    }
    return rc;
}
