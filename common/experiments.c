/* Layered A/B experiments. Each layer hashes the user with its own salt into B
 * buckets and looks the bucket up in a table built (and checked for overlaps)
 * at load time. The global holdout uses a salt of its own ("holdout_salt",
 * default "holdout"), so one user is held out of every layer at once. */
#include "experiments.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "exp_registry.h"
#include "hash.h"
#include "request.h"

#define EXP_DEFAULT_BUCKETS 1000
#define EXP_MAX_BUCKETS 1000000
#define EXP_FREE (-1)
/* Bucket table entries: EXP_FREE, 2·index (owned by experiment index) or
 * 2·index+1 (in experiment index's reverse range). */

struct exp_param {
    char *key, *value;
};

struct exp_experiment {
    char *name;
    char *reverse_name; /* "<name>:reverse" */
    struct exp_param *params;
    size_t n_params;
};

struct exp_layer {
    char *name, *salt;
    struct exp_experiment *experiments;
    size_t n_experiments;
    int launched;   /* index of the launched experiment, or -1 */
    int32_t *table; /* B entries */
};

struct cascade_experiments {
    uint32_t buckets;
    char *holdout_salt;
    bool *holdout; /* B entries */
    struct exp_layer *layers;
    size_t n_layers;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- destruction ---- */

static void experiment_free(struct exp_experiment *x)
{
    for (size_t i = 0; i < x->n_params; i++) {
        free(x->params[i].key);
        free(x->params[i].value);
    }
    free(x->params);
    free(x->reverse_name);
    free(x->name);
}

static void layer_free(struct exp_layer *l)
{
    for (size_t i = 0; i < l->n_experiments; i++)
        experiment_free(&l->experiments[i]);
    free(l->experiments);
    free(l->table);
    free(l->salt);
    free(l->name);
}

void cascade_experiments_destroy(cascade_experiments *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_layers; i++)
        layer_free(&e->layers[i]);
    free(e->layers);
    free(e->holdout);
    free(e->holdout_salt);
    free(e);
}

/* ---- parsing helpers ---- */

/* Walk the [[lo, hi], ...] ranges in json, calling mark(lo, hi) for each. */
typedef int (*range_fn)(void *ctx, uint32_t lo, uint32_t hi, char *err, size_t errlen);

static int for_each_range(const json_t *ranges, uint32_t buckets, const char *what, range_fn fn,
                          void *ctx, char *err, size_t errlen)
{
    if (!json_is_array(ranges)) {
        set_err(err, errlen, "%s: expected a list of [first, last] bucket ranges", what);
        return CASCADE_EINVAL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        json_t *lo = json_array_get(r, 0), *hi = json_array_get(r, 1);
        if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_integer(lo) ||
            !json_is_integer(hi)) {
            set_err(err, errlen, "%s: range %zu: expected [first, last] integers", what, i);
            return CASCADE_EINVAL;
        }
        json_int_t a = json_integer_value(lo), b = json_integer_value(hi);
        if (a < 0 || b < a || b >= (json_int_t)buckets) {
            set_err(err, errlen, "%s: range [%lld, %lld] is not inside [0, %u]", what, (long long)a,
                    (long long)b, buckets - 1);
            return CASCADE_EINVAL;
        }
        int rc = fn(ctx, (uint32_t)a, (uint32_t)b, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int mark_holdout(void *ctx, uint32_t lo, uint32_t hi, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    bool *holdout = ctx;
    for (uint32_t b = lo; b <= hi; b++)
        holdout[b] = true;
    return 0;
}

struct mark_ctx {
    struct exp_layer *layer;
    int32_t value;
    const char *what; /* "layer X experiment Y" */
};

static int mark_owner(void *ctx, uint32_t lo, uint32_t hi, char *err, size_t errlen)
{
    struct mark_ctx *m = ctx;
    for (uint32_t b = lo; b <= hi; b++) {
        int32_t prev = m->layer->table[b];
        if (prev != EXP_FREE) {
            set_err(err, errlen, "%s: bucket %u is already taken by experiment \"%s\"%s", m->what,
                    b, m->layer->experiments[prev / 2].name, prev % 2 ? " (reverse range)" : "");
            return CASCADE_EINVAL;
        }
        m->layer->table[b] = m->value;
    }
    return 0;
}

/* Shortest decimal text that reads back as the same double. */
static void format_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static char *param_text(const json_t *v)
{
    char buf[64];
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v))
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        format_double(json_real_value(v), buf, sizeof(buf));
    else if (json_is_boolean(v))
        snprintf(buf, sizeof(buf), "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return strdup(buf);
}

static int parse_params(struct exp_experiment *x, const char *layer, const json_t *params,
                        const char *what, char *err, size_t errlen)
{
    if (!params)
        return 0;
    if (!json_is_object(params)) {
        set_err(err, errlen, "%s: \"params\" must be an object", what);
        return CASCADE_EINVAL;
    }
    /* The stages refuse a context over the request limits (common/request.h),
     * so a config that would produce one is refused here, at start-up. */
    if (json_object_size(params) > CASCADE_REQUEST_EXP_PARAMS_MAX) {
        set_err(err, errlen, "%s: %zu params, at most %d", what, json_object_size(params),
                CASCADE_REQUEST_EXP_PARAMS_MAX);
        return CASCADE_EINVAL;
    }
    x->params = calloc(json_object_size(params) + 1, sizeof(*x->params));
    if (!x->params)
        return CASCADE_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
            set_err(err, errlen, "%s: param \"%s\" must be a number, string or boolean", what, key);
            return CASCADE_EINVAL;
        }
        char why[1024];
        if (cascade_exp_registry_check(layer, key, why, sizeof why) != 0) {
            set_err(err, errlen, "%s: %s", what, why);
            return CASCADE_EINVAL;
        }
        struct exp_param *p = &x->params[x->n_params++];
        p->key = strdup(key);
        p->value = param_text(v);
        if (!p->key || !p->value)
            return CASCADE_ENOMEM;
        if (strlen(p->key) > CASCADE_REQUEST_EXP_KEY_MAX ||
            strlen(p->value) > CASCADE_REQUEST_EXP_VALUE_MAX) {
            set_err(err, errlen,
                    "%s: param \"%.32s...\": key longer than %d or value longer "
                    "than %d bytes",
                    what, key, CASCADE_REQUEST_EXP_KEY_MAX, CASCADE_REQUEST_EXP_VALUE_MAX);
            return CASCADE_EINVAL;
        }
    }
    return 0;
}

static bool valid_name(const char *name)
{
    return *name && !strchr(name, ':') && strcmp(name, "baseline") != 0 &&
           strcmp(name, "holdout") != 0;
}

/* Parse experiment idx of layer l from json x. */
static int parse_experiment(const cascade_experiments *e, struct exp_layer *l, size_t idx,
                            const json_t *jx, char *err, size_t errlen)
{
    struct exp_experiment *x = &l->experiments[idx];
    char what[256];
    const json_t *jname = json_object_get(jx, "name");
    if (!json_is_object(jx) || !json_is_string(jname) || !valid_name(json_string_value(jname))) {
        set_err(err, errlen,
                "experiments: layer \"%s\" experiment %zu: needs a \"name\" (non-empty, no ':', "
                "not \"baseline\" or \"holdout\")",
                l->name, idx);
        return CASCADE_EINVAL;
    }
    const char *name = json_string_value(jname);
    if (strlen(name) + strlen(":reverse") > CASCADE_REQUEST_EXP_NAME_MAX) {
        set_err(err, errlen, "experiments: layer \"%s\" experiment %zu: name longer than %zu bytes",
                l->name, idx, CASCADE_REQUEST_EXP_NAME_MAX - strlen(":reverse"));
        return CASCADE_EINVAL;
    }
    snprintf(what, sizeof(what), "experiments: layer \"%s\" experiment \"%s\"", l->name, name);
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(l->experiments[j].name, name) == 0) {
            set_err(err, errlen, "%s: name used twice in the layer", what);
            return CASCADE_EINVAL;
        }
    }
    x->name = strdup(name);
    size_t rlen = strlen(name) + sizeof(":reverse");
    x->reverse_name = malloc(rlen);
    if (!x->name || !x->reverse_name)
        return CASCADE_ENOMEM;
    snprintf(x->reverse_name, rlen, "%s:reverse", name);

    const json_t *launched = json_object_get(jx, "launched");
    const json_t *ranges = json_object_get(jx, "ranges");
    const json_t *reverse = json_object_get(jx, "reverse");
    if (launched && !json_is_boolean(launched)) {
        set_err(err, errlen, "%s: \"launched\" must be true or false", what);
        return CASCADE_EINVAL;
    }
    struct mark_ctx m = {l, (int32_t)(2 * idx), what};
    int rc;
    if (json_is_true(launched)) {
        if (l->launched >= 0) {
            set_err(err, errlen, "%s: layer already has launched experiment \"%s\"", what,
                    l->experiments[l->launched].name);
            return CASCADE_EINVAL;
        }
        if (ranges) {
            set_err(err, errlen,
                    "%s: a launched experiment owns every free bucket; use "
                    "\"reverse\" for the buckets that keep the old strategy, not \"ranges\"",
                    what);
            return CASCADE_EINVAL;
        }
        l->launched = (int)idx;
        m.value = (int32_t)(2 * idx + 1);
        rc = reverse ? for_each_range(reverse, e->buckets, what, mark_owner, &m, err, errlen) : 0;
    } else {
        if (reverse) {
            set_err(err, errlen, "%s: \"reverse\" only applies to a launched experiment", what);
            return CASCADE_EINVAL;
        }
        if (!ranges || json_array_size(ranges) == 0) {
            set_err(err, errlen, "%s: needs \"ranges\" (or \"launched\": true)", what);
            return CASCADE_EINVAL;
        }
        rc = for_each_range(ranges, e->buckets, what, mark_owner, &m, err, errlen);
    }
    if (rc != 0)
        return rc;
    return parse_params(x, l->name, json_object_get(jx, "params"), what, err, errlen);
}

static int parse_layer(cascade_experiments *e, size_t idx, const json_t *jl, char *err,
                       size_t errlen)
{
    struct exp_layer *l = &e->layers[idx];
    l->launched = -1;
    const json_t *jname = json_object_get(jl, "name");
    const json_t *jsalt = json_object_get(jl, "salt");
    if (!json_is_object(jl) || !json_is_string(jname) || !*json_string_value(jname) ||
        (jsalt && (!json_is_string(jsalt) || !*json_string_value(jsalt)))) {
        set_err(err, errlen,
                "experiments: layer %zu: needs a non-empty \"name\" and an "
                "optional non-empty \"salt\"",
                idx);
        return CASCADE_EINVAL;
    }
    const char *name = json_string_value(jname);
    if (strlen(name) > CASCADE_REQUEST_EXP_NAME_MAX) {
        set_err(err, errlen, "experiments: layer %zu: name longer than %d bytes", idx,
                CASCADE_REQUEST_EXP_NAME_MAX);
        return CASCADE_EINVAL;
    }
    /* Without a salt the name serves: unique names then give unique salts. */
    const char *salt = jsalt ? json_string_value(jsalt) : name;
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(e->layers[j].name, name) == 0 || strcmp(e->layers[j].salt, salt) == 0) {
            set_err(err, errlen,
                    "experiments: layer \"%s\": name or salt \"%s\" already used by "
                    "layer \"%s\"; layers need distinct salts to be independent",
                    name, strcmp(e->layers[j].name, name) == 0 ? name : salt, e->layers[j].name);
            return CASCADE_EINVAL;
        }
    }
    l->name = strdup(name);
    l->salt = strdup(salt);
    l->table = malloc(sizeof(*l->table) * e->buckets);
    const json_t *jx = json_object_get(jl, "experiments");
    size_t n = json_array_size(jx);
    l->experiments = calloc(n ? n : 1, sizeof(*l->experiments));
    if (!l->name || !l->salt || !l->table || !l->experiments)
        return CASCADE_ENOMEM;
    for (uint32_t b = 0; b < e->buckets; b++)
        l->table[b] = EXP_FREE;
    if (jx && !json_is_array(jx)) {
        set_err(err, errlen, "experiments: layer \"%s\": \"experiments\" must be a list", name);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = parse_experiment(e, l, i, json_array_get(jx, i), err, errlen);
        l->n_experiments = i + 1; /* so a partly parsed experiment is freed too */
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The experiment of layer l that sets key, or NULL. */
static const struct exp_experiment *setter_of(const struct exp_layer *l, const char *key)
{
    for (size_t i = 0; i < l->n_experiments; i++)
        for (size_t j = 0; j < l->experiments[i].n_params; j++)
            if (strcmp(l->experiments[i].params[j].key, key) == 0)
                return &l->experiments[i];
    return NULL;
}

/* A key belongs to one layer: were two layers to set it, a user in both arms
 * would get the first layer's value and the second experiment would
 * silently measure nothing. Experiments of one layer may share keys (a user
 * is in at most one of them). */
static int check_key_owners(const cascade_experiments *e, char *err, size_t errlen)
{
    for (size_t a = 0; a < e->n_layers; a++) {
        const struct exp_layer *la = &e->layers[a];
        for (size_t i = 0; i < la->n_experiments; i++) {
            for (size_t j = 0; j < la->experiments[i].n_params; j++) {
                const char *key = la->experiments[i].params[j].key;
                for (size_t b = a + 1; b < e->n_layers; b++) {
                    const struct exp_experiment *other = setter_of(&e->layers[b], key);
                    if (!other)
                        continue;
                    set_err(err, errlen,
                            "experiments: parameter \"%s\" is set by layer \"%s\" (experiment "
                            "\"%s\") and by layer \"%s\" (experiment \"%s\"); a parameter "
                            "belongs to one layer",
                            key, la->name, la->experiments[i].name, e->layers[b].name, other->name);
                    return CASCADE_EINVAL;
                }
            }
        }
    }
    return 0;
}

static int parse_top(cascade_experiments *e, const json_t *cfg, char *err, size_t errlen)
{
    const json_t *jb = json_object_get(cfg, "buckets");
    if (jb && (!json_is_integer(jb) || json_integer_value(jb) < 1 ||
               json_integer_value(jb) > EXP_MAX_BUCKETS)) {
        set_err(err, errlen, "experiments: \"buckets\" must be an integer in [1, %d]",
                EXP_MAX_BUCKETS);
        return CASCADE_EINVAL;
    }
    e->buckets = jb ? (uint32_t)json_integer_value(jb) : EXP_DEFAULT_BUCKETS;
    const json_t *jsalt = json_object_get(cfg, "holdout_salt");
    if (jsalt && (!json_is_string(jsalt) || !*json_string_value(jsalt))) {
        set_err(err, errlen, "experiments: \"holdout_salt\" must be a non-empty string");
        return CASCADE_EINVAL;
    }
    e->holdout_salt = strdup(jsalt ? json_string_value(jsalt) : "holdout");
    e->holdout = calloc(e->buckets, sizeof(*e->holdout));
    if (!e->holdout_salt || !e->holdout)
        return CASCADE_ENOMEM;
    const json_t *jh = json_object_get(cfg, "holdout");
    if (jh) {
        int rc = for_each_range(jh, e->buckets, "experiments: holdout", mark_holdout, e->holdout,
                                err, errlen);
        if (rc != 0)
            return rc;
    }
    const json_t *jl = json_object_get(cfg, "layers");
    if (jl && !json_is_array(jl)) {
        set_err(err, errlen, "experiments: \"layers\" must be a list");
        return CASCADE_EINVAL;
    }
    size_t n = json_array_size(jl);
    if (n > CASCADE_REQUEST_EXP_LAYERS_MAX) {
        set_err(err, errlen, "experiments: %zu layers, at most %d", n,
                CASCADE_REQUEST_EXP_LAYERS_MAX);
        return CASCADE_EINVAL;
    }
    e->layers = calloc(n ? n : 1, sizeof(*e->layers));
    if (!e->layers)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_layer(e, i, json_array_get(jl, i), err, errlen);
        e->n_layers = i + 1;
        if (rc != 0)
            return rc;
    }
    return check_key_owners(e, err, errlen);
}

cascade_experiments *cascade_experiments_create(const json_t *cfg, char *err, size_t errlen)
{
    cascade_experiments *e = calloc(1, sizeof(*e));
    if (!e) {
        set_err(err, errlen, "experiments: out of memory");
        return NULL;
    }
    json_t *empty = NULL;
    if (!cfg)
        cfg = empty = json_object();
    int rc = CASCADE_ENOMEM;
    if (cfg && !json_is_object(cfg)) {
        set_err(err, errlen, "experiments: expected an object");
        rc = CASCADE_EINVAL;
    } else if (cfg) {
        rc = parse_top(e, cfg, err, errlen);
    }
    if (rc == CASCADE_ENOMEM)
        set_err(err, errlen, "experiments: out of memory");
    json_decref(empty);
    if (rc != 0) {
        cascade_experiments_destroy(e);
        return NULL;
    }
    return e;
}

/* ---- assignment ---- */

static int assign_params(const struct exp_experiment *x, cascade_arena *arena,
                         Cascade__V1__LayerAssignment *la)
{
    if (x->n_params == 0)
        return 0;
    la->params = cascade_arena_calloc(arena, x->n_params, sizeof(*la->params));
    if (!la->params)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < x->n_params; i++) {
        Cascade__V1__LayerAssignment__ParamsEntry *pe = cascade_arena_alloc(arena, sizeof(*pe));
        if (!pe)
            return CASCADE_ENOMEM;
        cascade__v1__layer_assignment__params_entry__init(pe);
        pe->key = cascade_arena_strdup(arena, x->params[i].key);
        pe->value = cascade_arena_strdup(arena, x->params[i].value);
        if (!pe->key || !pe->value)
            return CASCADE_ENOMEM;
        la->params[la->n_params++] = pe;
    }
    return 0;
}

static int assign_layer(const cascade_experiments *e, const struct exp_layer *l,
                        const char *user_id, bool held_out, cascade_arena *arena,
                        Cascade__V1__LayerAssignment **out)
{
    Cascade__V1__LayerAssignment *la = cascade_arena_alloc(arena, sizeof(*la));
    if (!la)
        return CASCADE_ENOMEM;
    cascade__v1__layer_assignment__init(la);
    la->bucket = cascade_hash_bucket(user_id, l->salt, e->buckets);
    la->layer = cascade_arena_strdup(arena, l->name);
    const char *experiment = "baseline";
    const struct exp_experiment *with_params = NULL;
    int32_t owner = l->table[la->bucket];
    if (held_out) {
        experiment = "holdout";
    } else if (owner != EXP_FREE && owner % 2 == 1) {
        experiment = l->experiments[owner / 2].reverse_name;
    } else if (owner != EXP_FREE) {
        with_params = &l->experiments[owner / 2];
    } else if (l->launched >= 0) {
        with_params = &l->experiments[l->launched];
    }
    if (with_params)
        experiment = with_params->name;
    la->experiment = cascade_arena_strdup(arena, experiment);
    if (!la->layer || !la->experiment)
        return CASCADE_ENOMEM;
    *out = la;
    return with_params ? assign_params(with_params, arena, la) : 0;
}

int cascade_experiments_assign(const cascade_experiments *e, const char *user_id,
                               cascade_arena *arena, Cascade__V1__ExperimentContext **out)
{
    if (!e || !user_id || !arena || !out)
        return CASCADE_EINVAL;
    *out = NULL;
    Cascade__V1__ExperimentContext *ctx = cascade_arena_alloc(arena, sizeof(*ctx));
    if (!ctx)
        return CASCADE_ENOMEM;
    cascade__v1__experiment_context__init(ctx);
    ctx->bucket_count = e->buckets;
    if (e->n_layers) {
        ctx->layers = cascade_arena_calloc(arena, e->n_layers, sizeof(*ctx->layers));
        if (!ctx->layers)
            return CASCADE_ENOMEM;
    }
    bool held_out = e->holdout[cascade_hash_bucket(user_id, e->holdout_salt, e->buckets)];
    for (size_t i = 0; i < e->n_layers; i++) {
        int rc = assign_layer(e, &e->layers[i], user_id, held_out, arena, &ctx->layers[i]);
        if (rc != 0)
            return rc;
        ctx->n_layers = i + 1;
    }
    *out = ctx;
    return 0;
}

/* ---- parameter lookup ---- */

const char *cascade_exp_param(const Cascade__V1__ExperimentContext *ctx, const char *key)
{
    for (size_t i = 0; ctx && i < ctx->n_layers; i++) {
        const Cascade__V1__LayerAssignment *la = ctx->layers[i];
        for (size_t j = 0; la && j < la->n_params; j++) {
            if (la->params[j] && la->params[j]->key && strcmp(la->params[j]->key, key) == 0)
                return la->params[j]->value;
        }
    }
    return NULL;
}

double cascade_exp_param_double(const Cascade__V1__ExperimentContext *ctx, const char *key,
                                double def)
{
    const char *text = cascade_exp_param(ctx, key);
    if (!text || !*text)
        return def;
    char *end;
    double v = strtod(text, &end);
    return *end == '\0' ? v : def;
}

/* ---- expected shares ---- */

static void add_arm(struct cascade_exp_arm *out, size_t cap, size_t *n, const char *name,
                    double share)
{
    if (share <= 0.0)
        return;
    if (*n < cap)
        out[*n] = (struct cascade_exp_arm){name, share};
    (*n)++;
}

int cascade_experiments_arms(const cascade_experiments *e, const char *layer,
                             struct cascade_exp_arm *out, size_t cap)
{
    const struct exp_layer *l = NULL;
    for (size_t i = 0; e && layer && i < e->n_layers; i++)
        if (strcmp(e->layers[i].name, layer) == 0)
            l = &e->layers[i];
    if (!l)
        return CASCADE_EINVAL;
    double b = (double)e->buckets;
    size_t held = 0, free_buckets = 0, n = 0;
    for (uint32_t k = 0; k < e->buckets; k++) {
        held += e->holdout[k];
        free_buckets += l->table[k] == EXP_FREE;
    }
    double h = (double)held / b, rest = 1.0 - h;
    add_arm(out, cap, &n, "holdout", h);
    if (l->launched < 0)
        add_arm(out, cap, &n, "baseline", rest * (double)free_buckets / b);
    for (size_t i = 0; i < l->n_experiments; i++) {
        size_t own = 0, rev = 0;
        for (uint32_t k = 0; k < e->buckets; k++) {
            own += l->table[k] == (int32_t)(2 * i);
            rev += l->table[k] == (int32_t)(2 * i + 1);
        }
        if ((int)i == l->launched)
            own = free_buckets;
        add_arm(out, cap, &n, l->experiments[i].name, rest * (double)own / b);
        add_arm(out, cap, &n, l->experiments[i].reverse_name, rest * (double)rev / b);
    }
    return (int)n;
}

int cascade_experiments_each_param(const json_t *section, const char *key, cascade_exp_param_fn fn,
                                   void *ctx, char *err, size_t errlen)
{
    size_t i, j;
    const json_t *layer, *x;
    json_array_foreach(json_object_get(section, "layers"), i, layer)
    {
        json_array_foreach(json_object_get(layer, "experiments"), j, x)
        {
            const json_t *v = json_object_get(json_object_get(x, "params"), key);
            if (!v)
                continue;
            char who[300];
            snprintf(who, sizeof who, "layer \"%.100s\" experiment \"%.100s\"",
                     json_string_value(json_object_get(layer, "name")),
                     json_string_value(json_object_get(x, "name")));
            int rc = fn(ctx, v, who, err, errlen);
            if (rc)
                return rc;
        }
    }
    return 0;
}
