/* Two-tower model: construction, the tower forward/backward passes, batched
 * inference of user and item vectors, and safetensors persistence with the
 * config as metadata. Objectives live in twotower_train.c. */
#include "twotower.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "twotower_internal.h"

void cascade_twotower_config_default(struct cascade_twotower_config *c)
{
    memset(c, 0, sizeof(*c));
    c->emb_dim = 16;
    c->hidden = 64;
    c->out_dim = 32;
    c->temperature = 0.05f;
    c->margin = 0.2f;
    c->init_std = 0.1f;
    c->seed = 1;
}

static int config_check(const struct cascade_twotower_config *c, char *err, size_t errlen)
{
    const struct {
        const char *name;
        size_t v;
    } sizes[] = {
        {"n_users", c->n_users},
        {"n_items", c->n_items},
        {"n_authors", c->n_authors},
        {"n_categories", c->n_categories},
        {"n_user_age_buckets", c->n_user_age_buckets},
        {"n_genders", c->n_genders},
        {"n_cities", c->n_cities},
        {"n_item_age_buckets", c->n_item_age_buckets},
        {"emb_dim", c->emb_dim},
        {"out_dim", c->out_dim},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (sizes[i].v == 0 || sizes[i].v > UINT32_MAX) {
            snprintf(err, errlen, "twotower config: %s must be in [1, %" PRIu32 "], got %zu",
                     sizes[i].name, UINT32_MAX, sizes[i].v);
            return CASCADE_EINVAL;
        }
    }
    if (!(c->temperature > 0.0f)) {
        snprintf(err, errlen, "twotower config: temperature must be > 0, got %g",
                 (double)c->temperature);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* Add the embeddings "<name>.<feat>" and the MLP "<name>.fc1"/"<name>.fc2". */
static int tower_init(struct tt_tower *t, cascade_nn_params *ps, const char *name,
                      const char *const *feats, const size_t *nums, size_t n_feats,
                      const struct cascade_twotower_config *c, struct cascade_rng *rng, char *err,
                      size_t errlen)
{
    char prefix[96];
    int rc = 0;
    t->n_feats = n_feats;
    t->emb_dim = c->emb_dim;
    t->in_dim = n_feats * c->emb_dim;
    t->hidden = c->hidden;
    t->out_dim = c->out_dim;
    for (size_t f = 0; f < n_feats; f++) {
        snprintf(prefix, sizeof(prefix), "%s.%s", name, feats[f]);
        rc = cascade_nn_embedding_init(&t->emb[f], ps, prefix, nums[f], c->emb_dim,
                                       CASCADE_NN_POOL_MEAN, c->init_std, rng, err, errlen);
        if (rc)
            goto out;
    }
    snprintf(prefix, sizeof(prefix), "%s.fc1", name);
    if (c->hidden > 0) {
        rc = cascade_nn_dense_init(&t->fc1, ps, prefix, t->in_dim, c->hidden,
                                   CASCADE_NN_INIT_HE_UNIFORM, rng, err, errlen);
        if (rc)
            goto out;
        snprintf(prefix, sizeof(prefix), "%s.fc2", name);
        rc = cascade_nn_dense_init(&t->fc2, ps, prefix, c->hidden, c->out_dim,
                                   CASCADE_NN_INIT_XAVIER_UNIFORM, rng, err, errlen);
    } else {
        rc = cascade_nn_dense_init(&t->fc1, ps, prefix, t->in_dim, c->out_dim,
                                   CASCADE_NN_INIT_XAVIER_UNIFORM, rng, err, errlen);
    }
out:
    return rc;
}

int cascade_twotower_create(const struct cascade_twotower_config *cfg, cascade_twotower **out,
                            char *err, size_t errlen)
{
    static const char *const user_feats[] = {"user_id", "age", "gender", "city", "history"};
    static const char *const item_feats[] = {"item_id", "author", "category", "age"};
    struct cascade_rng rng;
    cascade_twotower *m = NULL;
    int rc;

    *out = NULL;
    rc = config_check(cfg, err, errlen);
    if (rc)
        goto out;
    m = calloc(1, sizeof(*m));
    if (m)
        m->ps = cascade_nn_params_create();
    if (!m || !m->ps) {
        snprintf(err, errlen, "twotower: out of memory creating the model");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    m->cfg = *cfg;
    cascade_rng_seed(&rng, cfg->seed);
    const size_t user_nums[] = {cfg->n_users, cfg->n_user_age_buckets, cfg->n_genders,
                                cfg->n_cities, cfg->n_items};
    const size_t item_nums[] = {cfg->n_items, cfg->n_authors, cfg->n_categories,
                                cfg->n_item_age_buckets};
    rc = tower_init(&m->user, m->ps, "user", user_feats, user_nums, 5, cfg, &rng, err, errlen);
    if (rc)
        goto out;
    rc = tower_init(&m->item, m->ps, "item", item_feats, item_nums, 4, cfg, &rng, err, errlen);
    if (rc)
        goto out;
    *out = m;
    m = NULL;
out:
    cascade_twotower_destroy(m);
    return rc;
}

void cascade_twotower_destroy(cascade_twotower *m)
{
    if (!m)
        return;
    cascade_nn_params_destroy(m->ps);
    free(m);
}

const struct cascade_twotower_config *cascade_twotower_config_get(const cascade_twotower *m)
{
    return &m->cfg;
}

cascade_nn_params *cascade_twotower_params(cascade_twotower *m)
{
    return m->ps;
}

/* ---- inputs ---- */

void cascade_twotower__input_free(struct tt_input *in)
{
    free(in->offsets_single);
    free(in->offsets_hist);
    free(in->ids);
    memset(in, 0, sizeof(*in));
}

static int id_check(uint32_t id, size_t num, const char *what, size_t row, const char *feat,
                    char *err, size_t errlen)
{
    if (id < num)
        return 0;
    snprintf(err, errlen, "twotower: %s %zu: %s %" PRIu32 " out of range [0, %zu)", what, row, feat,
             id, num);
    return CASCADE_EINVAL;
}

/* offsets_single = 0..n and the first n_single·n ids; history (if any) after. */
static int input_alloc(struct tt_input *in, size_t n, size_t n_single, size_t n_hist, bool hist)
{
    memset(in, 0, sizeof(*in));
    in->batch = n;
    in->offsets_single = malloc((n + 1) * sizeof(size_t));
    in->ids = malloc((n * n_single + n_hist + 1) * sizeof(uint32_t));
    if (hist)
        in->offsets_hist = malloc((n + 1) * sizeof(size_t));
    if (!in->offsets_single || !in->ids || (hist && !in->offsets_hist))
        return CASCADE_ENOMEM;
    for (size_t i = 0; i <= n; i++)
        in->offsets_single[i] = i;
    for (size_t f = 0; f < n_single; f++) {
        in->bags[f].batch = n;
        in->bags[f].offsets = in->offsets_single;
        in->bags[f].ids = in->ids + f * n;
        in->bags[f].weights = NULL;
    }
    return 0;
}

int cascade_twotower__user_input(const cascade_twotower *m, const struct cascade_twotower_user *u,
                                 size_t n, struct tt_input *in, char *err, size_t errlen)
{
    const struct cascade_twotower_config *c = &m->cfg;
    size_t n_hist = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc = id_check(u[i].user_id, c->n_users, "user", i, "user_id", err, errlen);
        if (!rc)
            rc = id_check(u[i].age_bucket, c->n_user_age_buckets, "user", i, "age_bucket", err,
                          errlen);
        if (!rc)
            rc = id_check(u[i].gender, c->n_genders, "user", i, "gender", err, errlen);
        if (!rc)
            rc = id_check(u[i].city, c->n_cities, "user", i, "city", err, errlen);
        for (size_t k = 0; !rc && k < u[i].n_history; k++)
            rc = id_check(u[i].history[k], c->n_items, "user", i, "history item", err, errlen);
        if (rc)
            return rc;
        n_hist += u[i].n_history;
    }
    rc = input_alloc(in, n, 4, n_hist, true);
    if (rc) {
        snprintf(err, errlen, "twotower: out of memory for a batch of %zu users", n);
        cascade_twotower__input_free(in);
        return rc;
    }
    uint32_t *hist = in->ids + 4 * n;
    in->offsets_hist[0] = 0;
    for (size_t i = 0; i < n; i++) {
        in->ids[i] = u[i].user_id;
        in->ids[n + i] = u[i].age_bucket;
        in->ids[2 * n + i] = u[i].gender;
        in->ids[3 * n + i] = u[i].city;
        if (u[i].n_history)
            memcpy(hist + in->offsets_hist[i], u[i].history, u[i].n_history * sizeof(uint32_t));
        in->offsets_hist[i + 1] = in->offsets_hist[i] + u[i].n_history;
    }
    in->bags[4].batch = n;
    in->bags[4].offsets = in->offsets_hist;
    in->bags[4].ids = hist;
    in->bags[4].weights = NULL;
    return 0;
}

int cascade_twotower__item_input(const cascade_twotower *m, const struct cascade_twotower_item *it,
                                 size_t n, struct tt_input *in, char *err, size_t errlen)
{
    const struct cascade_twotower_config *c = &m->cfg;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = id_check(it[i].item_id, c->n_items, "item", i, "item_id", err, errlen);
        if (!rc)
            rc = id_check(it[i].author, c->n_authors, "item", i, "author", err, errlen);
        if (!rc)
            rc = id_check(it[i].category, c->n_categories, "item", i, "category", err, errlen);
        if (!rc)
            rc = id_check(it[i].age_bucket, c->n_item_age_buckets, "item", i, "age_bucket", err,
                          errlen);
    }
    if (rc)
        return rc;
    rc = input_alloc(in, n, 4, 0, false);
    if (rc) {
        snprintf(err, errlen, "twotower: out of memory for a batch of %zu items", n);
        cascade_twotower__input_free(in);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        in->ids[i] = it[i].item_id;
        in->ids[n + i] = it[i].author;
        in->ids[2 * n + i] = it[i].category;
        in->ids[3 * n + i] = it[i].age_bucket;
    }
    return 0;
}

/* ---- activations and the tower passes ---- */

int cascade_twotower__acts_alloc(const struct tt_tower *t, size_t batch, struct tt_acts *a)
{
    size_t feat = t->n_feats * batch * t->emb_dim, x = batch * t->in_dim;
    size_t h = batch * t->hidden, y = batch * t->out_dim;
    memset(a, 0, sizeof(*a));
    a->batch = batch;
    a->block = malloc((feat + x + h + 2 * y + batch + 1) * sizeof(float));
    if (!a->block)
        return CASCADE_ENOMEM;
    a->feat = a->block;
    a->x = a->feat + feat;
    a->h = a->x + x;
    a->y = a->h + h;
    a->out = a->y + y;
    a->norms = a->out + y;
    return 0;
}

void cascade_twotower__acts_free(struct tt_acts *a)
{
    free(a->block);
    memset(a, 0, sizeof(*a));
}

int cascade_twotower__tower_forward(const struct tt_tower *t, const struct tt_input *in,
                                    struct tt_acts *a)
{
    size_t n = in->batch, e = t->emb_dim;
    int rc = 0;
    for (size_t f = 0; f < t->n_feats && !rc; f++)
        rc = cascade_nn_embedding_forward(&t->emb[f], &in->bags[f], a->feat + f * n * e);
    if (rc)
        return rc;
    for (size_t b = 0; b < n; b++)
        for (size_t f = 0; f < t->n_feats; f++)
            memcpy(a->x + b * t->in_dim + f * e, a->feat + (f * n + b) * e, e * sizeof(float));
    if (t->hidden > 0) {
        rc = cascade_nn_dense_forward(&t->fc1, a->x, n, a->h);
        if (rc)
            return rc;
        cascade_nn_relu_forward(a->h, n * t->hidden, a->h);
        rc = cascade_nn_dense_forward(&t->fc2, a->h, n, a->y);
    } else {
        rc = cascade_nn_dense_forward(&t->fc1, a->x, n, a->y);
    }
    if (rc)
        return rc;
    cascade_nn_l2norm_forward(a->y, n, t->out_dim, a->out, a->norms);
    return 0;
}

int cascade_twotower__tower_backward(struct tt_tower *t, const struct tt_input *in,
                                     const struct tt_acts *a, const float *dout)
{
    size_t n = in->batch, e = t->emb_dim;
    size_t ny = n * t->out_dim, nh = n * t->hidden, nx = n * t->in_dim;
    float *block = malloc((ny + nh + 2 * nx + 1) * sizeof(float));
    float *dy = block, *dh = block + ny, *dx = dh + nh, *dfeat = dx + nx;
    int rc = 0;
    if (!block)
        return CASCADE_ENOMEM;
    cascade_nn_l2norm_backward(a->out, a->norms, dout, n, t->out_dim, dy);
    if (t->hidden > 0) {
        rc = cascade_nn_dense_backward(&t->fc2, a->h, dy, n, dh);
        if (rc)
            goto out;
        cascade_nn_relu_backward(a->h, dh, nh, dh);
        rc = cascade_nn_dense_backward(&t->fc1, a->x, dh, n, dx);
    } else {
        rc = cascade_nn_dense_backward(&t->fc1, a->x, dy, n, dx);
    }
    if (rc)
        goto out;
    for (size_t b = 0; b < n; b++)
        for (size_t f = 0; f < t->n_feats; f++)
            memcpy(dfeat + (f * n + b) * e, dx + b * t->in_dim + f * e, e * sizeof(float));
    for (size_t f = 0; f < t->n_feats && !rc; f++)
        rc = cascade_nn_embedding_backward(&t->emb[f], &in->bags[f], dfeat + f * n * e);
out:
    free(block);
    return rc;
}

/* ---- inference ---- */

static int vectors(const struct tt_tower *t, struct tt_input *in, size_t n, float *out, char *err,
                   size_t errlen)
{
    struct tt_acts a;
    int rc = cascade_twotower__acts_alloc(t, n, &a);
    if (rc) {
        snprintf(err, errlen, "twotower: out of memory for %zu vectors", n);
        goto out;
    }
    rc = cascade_twotower__tower_forward(t, in, &a);
    if (rc) {
        snprintf(err, errlen, "twotower: tower forward pass failed (batch %zu)", n);
        goto out;
    }
    memcpy(out, a.out, n * t->out_dim * sizeof(float));
out:
    cascade_twotower__acts_free(&a);
    return rc;
}

int cascade_twotower_user_vectors(const cascade_twotower *m, const struct cascade_twotower_user *u,
                                  size_t n, float *out, char *err, size_t errlen)
{
    struct tt_input in;
    if (n == 0)
        return 0;
    int rc = cascade_twotower__user_input(m, u, n, &in, err, errlen);
    if (rc)
        return rc;
    rc = vectors(&m->user, &in, n, out, err, errlen);
    cascade_twotower__input_free(&in);
    return rc;
}

int cascade_twotower_item_vectors(const cascade_twotower *m, const struct cascade_twotower_item *it,
                                  size_t n, float *out, char *err, size_t errlen)
{
    struct tt_input in;
    if (n == 0)
        return 0;
    int rc = cascade_twotower__item_input(m, it, n, &in, err, errlen);
    if (rc)
        return rc;
    rc = vectors(&m->item, &in, n, out, err, errlen);
    cascade_twotower__input_free(&in);
    return rc;
}

/* ---- persistence ---- */

enum { TT_META_SIZES = 11 };

static const char *const meta_size_keys[TT_META_SIZES] = {
    "n_users",   "n_items",  "n_authors",          "n_categories", "n_user_age_buckets",
    "n_genders", "n_cities", "n_item_age_buckets", "emb_dim",      "hidden",
    "out_dim"};

static size_t *meta_size_field(struct cascade_twotower_config *c, size_t i)
{
    size_t *fields[TT_META_SIZES] = {&c->n_users,
                                     &c->n_items,
                                     &c->n_authors,
                                     &c->n_categories,
                                     &c->n_user_age_buckets,
                                     &c->n_genders,
                                     &c->n_cities,
                                     &c->n_item_age_buckets,
                                     &c->emb_dim,
                                     &c->hidden,
                                     &c->out_dim};
    return fields[i];
}

int cascade_twotower_save(const cascade_twotower *m, const char *path, char *err, size_t errlen)
{
    const char *keys[TT_META_SIZES + 3];
    const char *values[TT_META_SIZES + 3];
    char buf[TT_META_SIZES + 3][48];
    struct cascade_twotower_config c = m->cfg;
    for (size_t i = 0; i < TT_META_SIZES; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%zu", *meta_size_field(&c, i));
        keys[i] = meta_size_keys[i];
    }
    keys[TT_META_SIZES] = "format";
    snprintf(buf[TT_META_SIZES], sizeof(buf[0]), "cascade-twotower-1");
    keys[TT_META_SIZES + 1] = "temperature";
    snprintf(buf[TT_META_SIZES + 1], sizeof(buf[0]), "%.9g", (double)c.temperature);
    keys[TT_META_SIZES + 2] = "margin";
    snprintf(buf[TT_META_SIZES + 2], sizeof(buf[0]), "%.9g", (double)c.margin);
    for (size_t i = 0; i < TT_META_SIZES + 3; i++)
        values[i] = buf[i];
    return cascade_nn_params_save(m->ps, path, keys, values, TT_META_SIZES + 3, err, errlen);
}

static int meta_number(const cascade_safetensors *st, const char *path, const char *key, double *v,
                       char *err, size_t errlen)
{
    const char *s = cascade_safetensors_meta(st, key);
    char *end = NULL;
    if (s)
        *v = strtod(s, &end);
    if (!s || end == s || *end != '\0') {
        snprintf(err, errlen, "%s: metadata \"%s\" is %s; is this a twotower model?", path, key,
                 s ? "not a number" : "missing");
        return CASCADE_EFORMAT;
    }
    return 0;
}

int cascade_twotower_load(const char *path, cascade_twotower **out, char *err, size_t errlen)
{
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    double v = 0;
    int rc = 0;
    *out = NULL;
    cascade_safetensors *st = cascade_safetensors_read(path, err, errlen);
    if (!st)
        return CASCADE_EIO;
    cascade_twotower_config_default(&c);
    for (size_t i = 0; i < TT_META_SIZES && !rc; i++) {
        rc = meta_number(st, path, meta_size_keys[i], &v, err, errlen);
        if (!rc && (v < 0 || v > (double)UINT32_MAX)) {
            snprintf(err, errlen, "%s: metadata %s = %g out of range", path, meta_size_keys[i], v);
            rc = CASCADE_EFORMAT;
        }
        if (!rc)
            *meta_size_field(&c, i) = (size_t)v;
    }
    if (!rc && (rc = meta_number(st, path, "temperature", &v, err, errlen)) == 0)
        c.temperature = (float)v;
    if (!rc && (rc = meta_number(st, path, "margin", &v, err, errlen)) == 0)
        c.margin = (float)v;
    if (rc)
        goto out;
    rc = cascade_twotower_create(&c, &m, err, errlen);
    if (rc) {
        rc = CASCADE_EFORMAT;
        goto out;
    }
    rc = cascade_nn_params_load_from(m->ps, st, path, err, errlen);
    if (rc)
        goto out;
    *out = m;
    m = NULL;
out:
    cascade_twotower_destroy(m);
    cascade_safetensors_destroy(st);
    return rc;
}
