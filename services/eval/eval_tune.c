/* Merge weights chosen on a validation split (eval_tune.h): a generic
 * seeded coordinate ascent over a grid, the objective "mean over K of
 * recall@K of the merge of the kept validation lists", and the chosen weights
 * written as an orchestrator.channels fragment. */
#include "eval_tune.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "orch_config.h"
#include "rng.h"

/* A move must beat the current value by more than this (ties stay put). */
#define ASCENT_EPS 1e-12

/* The coordinates of one pass in a seeded order (Fisher-Yates). */
static void pass_order(struct cascade_rng *rng, size_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cascade_rng_below(rng, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* Best grid value of coordinate d with the others fixed; *best is the
 * current objective value and becomes the best one. */
static int best_on_axis(cascade_eval_objective_fn f, void *ctx, double *w, size_t n, size_t d,
                        const struct cascade_eval_ascent_opts *o, double *trial, double *best,
                        struct cascade_eval_ascent_result *res)
{
    double chosen = w[d];
    for (size_t g = 0; g < o->n_grid; g++) {
        double v;
        if (o->grid[g] == w[d])
            continue;
        memcpy(trial, w, n * sizeof *trial);
        trial[d] = o->grid[g];
        int rc = f(ctx, trial, n, &v);
        res->evaluations++;
        if (rc != 0)
            return rc;
        if (v > *best + ASCENT_EPS) {
            *best = v;
            chosen = o->grid[g];
        }
    }
    w[d] = chosen;
    return 0;
}

int cascade_eval_coord_ascent(cascade_eval_objective_fn f, void *ctx, double *w, size_t n,
                              const struct cascade_eval_ascent_opts *o,
                              struct cascade_eval_ascent_result *res)
{
    struct cascade_rng rng;
    double *trial = NULL, best;
    size_t *order = NULL;
    memset(res, 0, sizeof *res);
    if (n == 0 || o->n_grid == 0 || !o->grid)
        return CASCADE_EINVAL;
    trial = malloc(n * sizeof *trial);
    order = malloc(n * sizeof *order);
    int rc = CASCADE_ENOMEM;
    if (!trial || !order)
        goto out;
    if ((rc = f(ctx, w, n, &best)) != 0)
        goto out;
    res->evaluations = 1;
    res->start_value = best;
    cascade_rng_seed(&rng, o->seed ^ 0xa5c3d1e0f7b29486ULL);
    for (size_t s = 0; s < o->max_sweeps; s++) {
        double before = best;
        pass_order(&rng, order, n);
        for (size_t i = 0; i < n; i++)
            if ((rc = best_on_axis(f, ctx, w, n, order[i], o, trial, &best, res)) != 0)
                goto out;
        res->sweeps++;
        if (best == before)
            break; /* no coordinate moved: a pass more would change nothing */
    }
    res->value = best;
    rc = 0;
out:
    free(trial);
    free(order);
    return rc;
}

int cascade_eval_grid_parse(const char *list, double *grid, size_t *n, char *err, size_t errlen)
{
    char buf[512], *save = NULL;
    *n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        errno = 0;
        double v = strtod(tok, &end);
        while (end && *end == ' ')
            end++;
        if (errno || end == tok || *end || !(v >= 0 && v <= 1e6) || *n == CASCADE_EVAL_MAX_GRID ||
            (*n > 0 && v <= grid[*n - 1])) {
            snprintf(err, errlen,
                     "--tune-grid: expected 1 to %d ascending weights in [0, 1e6], got '%s' at "
                     "position %zu",
                     CASCADE_EVAL_MAX_GRID, tok, *n + 1);
            return CASCADE_EINVAL;
        }
        grid[(*n)++] = v;
    }
    if (*n == 0) {
        snprintf(err, errlen, "--tune-grid: expected weights such as 0,0.25,0.5,1,2,4");
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_eval_split_validation(const struct cascade_eval_split *outer,
                                  const struct cascade_eval_split_opts *o, double valid_frac,
                                  struct cascade_eval_split *inner, char *err, size_t errlen)
{
    struct cascade_eval_split_opts vo = *o;
    vo.test_frac = valid_frac;
    char msg[512] = "";
    int rc = cascade_eval_split_run(outer->train, &vo, inner, msg, sizeof msg);
    if (rc != 0)
        snprintf(err, errlen, "validation split: %s", msg);
    return rc;
}

/* What the objective needs: the kept lists, the K values, the channels and
 * which of them are searched (dims[i] = channel of coordinate i). */
struct objective_ctx {
    const struct cascade_eval_lists *lists;
    const size_t *ks;
    size_t n_ks;
    const struct cascade_eval_tune_result *res;
    size_t dims[CASCADE_EVAL_MAX_CHANNELS];
    char *err;
    size_t errlen;
};

/* The merge for coordinates w: searched channels take w, the others their
 * start weight; channels at weight 0 are left out. */
static size_t merge_for(const struct objective_ctx *c, const double *w, size_t n_dims,
                        struct cascade_eval_merge_channel *out)
{
    double weight[CASCADE_EVAL_MAX_CHANNELS];
    size_t n = 0;
    for (size_t i = 0; i < c->res->n; i++)
        weight[i] = c->res->ch[i].start;
    for (size_t d = 0; d < n_dims; d++)
        weight[c->dims[d]] = w[d];
    for (size_t i = 0; i < c->res->n; i++) {
        if (!(weight[i] > 0))
            continue;
        snprintf(out[n].name, sizeof out[n].name, "%s", c->res->ch[i].name);
        out[n].weight = weight[i];
        out[n].quota = c->res->ch[i].quota;
        n++;
    }
    return n;
}

static int merge_recall(void *ctx, const double *w, size_t n_dims, double *value)
{
    struct objective_ctx *c = ctx;
    struct cascade_eval_merge_channel merge[CASCADE_EVAL_MAX_CHANNELS];
    struct cascade_eval_acc acc;
    size_t n = merge_for(c, w, n_dims, merge);
    int rc = cascade_eval_acc_init(&acc, c->ks, c->n_ks, c->lists->split->train->n_items);
    *value = 0;
    if (rc != 0) {
        snprintf(c->err, c->errlen, "tuning: out of memory");
        goto out;
    }
    if (n > 0 && (rc = cascade_eval_lists_merge(c->lists, merge, n, c->ks[c->n_ks - 1], &acc,
                                                c->err, c->errlen)) != 0)
        goto out;
    for (size_t i = 0; i < c->n_ks && acc.users > 0; i++)
        *value += acc.recall[i] / (double)acc.users;
    *value /= (double)c->n_ks;
out:
    cascade_eval_acc_free(&acc);
    return rc;
}

static void add_channel(struct cascade_eval_tune_result *res, const char *name, double start,
                        uint32_t quota, bool in_base)
{
    struct cascade_eval_tuned_channel *ch = &res->ch[res->n++];
    snprintf(ch->name, sizeof ch->name, "%s", name);
    ch->start = ch->weight = start;
    ch->quota = quota;
    ch->in_base = in_base;
}

/* The channels of the tuning: the base merge in its order, then every other
 * channel of the kept lists; each with its start weight and signal. */
static int tune_channels(const struct cascade_eval_lists *l, uint32_t max_k,
                         const struct cascade_eval_merge_channel *base, size_t n_base,
                         struct cascade_eval_tune_result *res, char *err, size_t errlen)
{
    for (size_t m = 0; m < n_base; m++) {
        if (cascade_eval_lists_channel(l, base[m].name) < 0) {
            snprintf(err, errlen, "tuning: merge channel %s was not evaluated", base[m].name);
            return CASCADE_EINVAL;
        }
        add_channel(res, base[m].name, base[m].weight, base[m].quota, true);
    }
    for (size_t c = 0; c < l->n_channels; c++) {
        bool in_base = false;
        for (size_t m = 0; m < n_base; m++)
            in_base |= strcmp(base[m].name, l->channels[c]) == 0;
        if (!in_base)
            add_channel(res, l->channels[c], 0.0, max_k, false);
    }
    for (size_t i = 0; i < res->n; i++)
        res->ch[i].signal = cascade_eval_lists_has_candidates(
            l, (size_t)cascade_eval_lists_channel(l, res->ch[i].name));
    return 0;
}

int cascade_eval_tune_weights(const struct cascade_eval_lists *l, const size_t *ks, size_t n_ks,
                              const struct cascade_eval_merge_channel *base, size_t n_base,
                              const struct cascade_eval_tune_opts *o,
                              struct cascade_eval_tune_result *res, char *err, size_t errlen)
{
    struct objective_ctx ctx = {
        .lists = l, .ks = ks, .n_ks = n_ks, .res = res, .err = err, .errlen = errlen};
    double w[CASCADE_EVAL_MAX_CHANNELS];
    size_t n_dims = 0;
    int64_t t0 = cascade_now_ms();
    memset(res, 0, sizeof *res);
    if (n_ks == 0) {
        snprintf(err, errlen, "tuning: no K values");
        return CASCADE_EINVAL;
    }
    int rc = tune_channels(l, (uint32_t)ks[n_ks - 1], base, n_base, res, err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < res->n; i++)
        if (res->ch[i].signal) {
            ctx.dims[n_dims] = i;
            w[n_dims++] = res->ch[i].start;
        }
    if (n_dims == 0) {
        snprintf(err, errlen,
                 "tuning: no channel returned a candidate to any validation user; nothing to "
                 "tune (check the data and --channels)");
        return CASCADE_EINVAL;
    }
    struct cascade_eval_ascent_opts ao = {
        .grid = o->grid, .n_grid = o->n_grid, .max_sweeps = o->max_sweeps, .seed = o->seed};
    if ((rc = cascade_eval_coord_ascent(merge_recall, &ctx, w, n_dims, &ao, &res->ascent)) != 0) {
        if (rc == CASCADE_EINVAL && o->n_grid == 0)
            snprintf(err, errlen, "tuning: empty weight grid");
        return rc;
    }
    for (size_t d = 0; d < n_dims; d++)
        res->ch[ctx.dims[d]].weight = w[d];
    const struct cascade_eval_split *s = l->split;
    res->valid_users = s->n_users;
    res->valid_items = s->test_items;
    res->valid_train_events = s->train_events;
    res->seconds = (double)(cascade_now_ms() - t0) / 1000.0;
    return 0;
}

size_t cascade_eval_tune_merge(const struct cascade_eval_tune_result *res,
                               struct cascade_eval_merge_channel *out)
{
    size_t n = 0;
    for (size_t i = 0; i < res->n; i++) {
        if (!(res->ch[i].weight > 0))
            continue;
        snprintf(out[n].name, sizeof out[n].name, "%s", res->ch[i].name);
        out[n].weight = res->ch[i].weight;
        out[n].quota = res->ch[i].quota;
        n++;
    }
    return n;
}

/* The config's orchestrator.channels object named `name` (borrowed), or NULL. */
static json_t *config_channel(const cascade_config *cfg, const char *name)
{
    json_t *list = cascade_config_get(cfg, "orchestrator.channels"), *obj;
    size_t i;
    if (!json_is_array(list))
        return NULL;
    json_array_foreach(list, i, obj)
    {
        json_t *n = json_object_get(obj, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return obj;
    }
    return NULL;
}

/* One channel object; keep_enabled: stays enabled even at weight 0. */
static json_t *fragment_channel(const struct cascade_eval_tuned_channel *ch,
                                const cascade_config *cfg, bool keep_enabled)
{
    json_t *src = config_channel(cfg, ch->name);
    json_t *obj = src ? json_deep_copy(src) : json_object();
    if (!obj)
        return NULL;
    json_object_set_new(obj, "name", json_string(ch->name));
    json_object_set_new(obj, "weight", json_real(ch->weight));
    json_object_set_new(obj, "quota", json_integer(ch->quota));
    if (ch->weight > 0 || keep_enabled)
        json_object_del(obj, "enabled");
    else
        json_object_set_new(obj, "enabled", json_false());
    return obj;
}

/* The exploration channel of cfg's orchestrator section ("" when
 * exploration is off) into name. */
static int exploration_channel(const cascade_config *cfg, char *name, size_t len, char *err,
                               size_t errlen)
{
    struct cascade_orch_config *oc = calloc(1, sizeof *oc);
    cascade_config *empty = cfg ? NULL : cascade_config_empty();
    int rc = CASCADE_ENOMEM;
    if (!oc || (!cfg && !empty)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((rc = cascade_orch_config_parse(cfg ? cfg : empty, oc, err, errlen)) != 0)
        goto out;
    snprintf(name, len, "%s", oc->explore_share > 0 ? oc->explore_channel : "");
out:
    cascade_config_destroy(empty);
    free(oc);
    return rc;
}

int cascade_eval_tune_write_fragment(const char *path, const struct cascade_eval_tune_result *res,
                                     const cascade_config *cfg, const char **kept_enabled,
                                     char *err, size_t errlen)
{
    json_t *doc = json_object(), *orch = json_object(), *list = json_array();
    char explore[CASCADE_ORCH_NAME_MAX];
    *kept_enabled = NULL;
    int rc = exploration_channel(cfg, explore, sizeof explore, err, errlen);
    if (rc != 0)
        goto out;
    rc = CASCADE_ENOMEM;
    if (!doc || !orch || !list)
        goto out;
    for (size_t i = 0; i < res->n; i++) {
        const struct cascade_eval_tuned_channel *ch = &res->ch[i];
        bool explores = strcmp(ch->name, explore) == 0;
        if (!ch->in_base && !(ch->weight > 0))
            continue; /* not in the base mix and not chosen: nothing to say */
        if (explores && !(ch->weight > 0))
            *kept_enabled = ch->name;
        json_t *obj = fragment_channel(ch, cfg, explores);
        if (!obj || json_array_append_new(list, obj) != 0)
            goto out;
    }
    json_object_set(orch, "channels", list);
    json_object_set(doc, "orchestrator", orch);
    rc = json_dump_file(doc, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0 ? 0 : CASCADE_EIO;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "%s: out of memory building the weights fragment", path);
    else if (rc == CASCADE_EIO)
        snprintf(err, errlen, "%s: cannot write the weights fragment: %s", path, strerror(errno));
    json_decref(list);
    json_decref(orch);
    json_decref(doc);
    return rc;
}
