/* Tree ensemble evaluation and persistence (gbdt.h). Nodes of every tree
 * live in flat arrays; a tree is its root index. Prediction walks a second,
 * walk-ready copy of the trees built once per model (gbdt_layout), one row
 * at a time here, or 8 or 16 at a time in gbdt_batch.c. */
#include "gbdt.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gbdt_internal.h"
#include "safetensors.h"

void cascade_gbdt_destroy(cascade_gbdt *m)
{
    if (!m)
        return;
    free(m->feature);
    free(m->value);
    free(m->left);
    free(m->right);
    free(m->default_left);
    free(m->root);
    free(m->walk);
    free(m->walk_root);
    cascade_gbdt__batch_destroy(m->batch);
    cascade_safetensors_destroy(m->file);
    free(m);
}

static cascade_gbdt *gbdt_alloc(size_t n_nodes, size_t n_trees, size_t n_features)
{
    cascade_gbdt *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_nodes = n_nodes;
    m->n_trees = n_trees;
    m->n_features = n_features;
    m->margin_feature = -1;
    m->feature = calloc(n_nodes + 1, sizeof *m->feature);
    m->value = calloc(n_nodes + 1, sizeof *m->value);
    m->left = calloc(n_nodes + 1, sizeof *m->left);
    m->right = calloc(n_nodes + 1, sizeof *m->right);
    m->default_left = calloc(n_nodes + 1, sizeof *m->default_left);
    m->root = calloc(n_trees + 1, sizeof *m->root);
    m->walk = calloc(n_nodes + 1, sizeof *m->walk);
    m->walk_root = calloc(n_trees + 1, sizeof *m->walk_root);
    if (!m->feature || !m->value || !m->left || !m->right || !m->default_left || !m->root ||
        !m->walk || !m->walk_root) {
        cascade_gbdt_destroy(m);
        return NULL;
    }
    return m;
}

size_t cascade_gbdt_n_features(const cascade_gbdt *m)
{
    return m->n_features;
}

size_t cascade_gbdt_n_trees(const cascade_gbdt *m)
{
    return m->n_trees;
}

const char *cascade_gbdt_meta(const cascade_gbdt *m, const char *key)
{
    return m && m->file ? cascade_safetensors_meta(m->file, key) : NULL;
}

static float tree_score(const cascade_gbdt *m, int32_t node, const float *x)
{
    while (m->feature[node] >= 0) {
        float v = x[m->feature[node]];
        if (isnan(v))
            node = m->default_left[node] ? m->left[node] : m->right[node];
        else
            node = v < m->value[node] ? m->left[node] : m->right[node];
    }
    return m->value[node];
}

/* One step down from node k (unsigned, so the index needs no sign
 * extension in the loop). */
static inline uint32_t walk_step(const struct gbdt_node *nodes, const float *xx, uint32_t k)
{
    return nodes[k].child + (xx[nodes[k].feature] >= nodes[k].threshold);
}

/* The sum of the leaves of row x, tree by tree in order as tree_score
 * would give them; xx is x followed by -x. Every tree is walked depth steps
 * (the deepest tree's depth: a shallower tree's walk stays on its leaf). */
static inline __attribute__((always_inline)) double
walk_trees(const cascade_gbdt *m, const float *xx, double s, const uint32_t depth)
{
    const struct gbdt_node *nodes = m->walk;
    for (size_t t = 0; t < m->n_trees; t++) {
        uint32_t k = m->walk_root[t];
#pragma GCC unroll 8
        for (uint32_t d = 0; d < depth; d++)
            k = walk_step(nodes, xx, k);
        s += nodes[k].leaf;
    }
    return s;
}

/* walk_trees with the depth a constant for the depths cascade-build train
 * ltr grows (pre-rank 4, rank 6), so each tree's walk is straight-line code. */
static double walk_row(const cascade_gbdt *m, const float *xx, double s)
{
    if (m->walk_depth == 4)
        return walk_trees(m, xx, s, 4);
    if (m->walk_depth == 6)
        return walk_trees(m, xx, s, 6);
    return walk_trees(m, xx, s, m->walk_depth);
}

void cascade_gbdt__predict_rows(const cascade_gbdt *m, const float *X, size_t n, float *out)
{
    size_t nf = m->n_features;
    if (nf > GBDT_WALK_MAX_FEATURES) {
        for (size_t i = 0; i < n; i++) {
            const float *x = X + i * nf;
            double s = cascade_gbdt__row_start(m, x);
            for (size_t t = 0; t < m->n_trees; t++)
                s += tree_score(m, m->root[t], x);
            out[i] = (float)s;
        }
        return;
    }
    float xx[2 * GBDT_WALK_MAX_FEATURES];
    for (size_t i = 0; i < n; i++) {
        const float *x = X + i * nf;
        for (size_t f = 0; f < nf; f++) {
            xx[f] = x[f];
            xx[nf + f] = -x[f];
        }
        out[i] = (float)walk_row(m, xx, cascade_gbdt__row_start(m, x));
    }
}

void cascade_gbdt_predict(const cascade_gbdt *m, const float *X, size_t n, float *out)
{
    if (m->batch)
        cascade_gbdt__batch_predict(m, X, n, out);
    else
        cascade_gbdt__predict_rows(m, X, n, out);
}

/* Node o of the plain arrays as a walk-ready node at k whose children (if
 * any) go to first and first + 1. */
static void walk_node(cascade_gbdt *m, int32_t o, int32_t k, int32_t first)
{
    struct gbdt_node *w = &m->walk[k];
    float t = m->value[o];
    if (m->feature[o] < 0) {
        *w = (struct gbdt_node){0, NAN, (uint32_t)k, t};
    } else if (m->default_left[o]) {
        *w = (struct gbdt_node){(uint32_t)m->feature[o], t, (uint32_t)first, 0.0f};
    } else {
        float neg = t == -INFINITY ? NAN : nextafterf(-t, INFINITY);
        *w = (struct gbdt_node){(uint32_t)(m->n_features + (size_t)m->feature[o]), neg,
                                (uint32_t)first, 0.0f};
    }
}

/* Build the walk-ready layout from the checked plain arrays: each tree's
 * nodes breadth first in its own node range, the child a missing value
 * takes first. A node reached from two parents (the range would overflow)
 * or a NaN threshold is an error. */
static int gbdt_layout(cascade_gbdt *m, char *err, size_t errlen)
{
    int rc = CASCADE_ENOMEM;
    int32_t *order = calloc(m->n_nodes + 1, sizeof *order),
            *depth = calloc(m->n_nodes + 1, sizeof *depth);
    if (!order || !depth) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = CASCADE_EFORMAT;
    for (size_t t = 0; t < m->n_trees; t++) {
        int32_t lo = m->root[t];
        int32_t hi = t + 1 < m->n_trees ? m->root[t + 1] : (int32_t)m->n_nodes;
        int32_t end = lo + 1, max_depth = 0;
        order[lo] = lo;
        depth[lo] = 0;
        for (int32_t k = lo; k < end; k++) {
            int32_t o = order[k];
            if (m->feature[o] >= 0) {
                if (isnan(m->value[o]) || end + 2 > hi) {
                    snprintf(err, errlen, "tree %zu: %s", t,
                             isnan(m->value[o]) ? "NaN split threshold" : "a node has two parents");
                    goto out;
                }
                order[end] = m->default_left[o] ? m->left[o] : m->right[o];
                order[end + 1] = m->default_left[o] ? m->right[o] : m->left[o];
                depth[end] = depth[end + 1] = depth[k] + 1;
                if (depth[k] + 1 > max_depth)
                    max_depth = depth[k] + 1;
                end += 2;
            }
            walk_node(m, o, k, end - 2);
        }
        m->walk_root[t] = (uint32_t)lo;
        if ((uint32_t)max_depth > m->walk_depth)
            m->walk_depth = (uint32_t)max_depth;
    }
    rc = 0;
out:
    free(order);
    free(depth);
    return rc;
}

int cascade_gbdt_set_margin(cascade_gbdt *m, size_t feature, float scale)
{
    if (feature >= m->n_features || !isfinite(scale))
        return CASCADE_EINVAL;
    m->margin_feature = (int32_t)feature;
    m->margin_scale = scale;
    return 0;
}

cascade_gbdt *cascade_gbdt_margin_only(size_t n_features, size_t feature, float scale)
{
    /* One tree of one leaf worth 0: the file format needs a node. */
    cascade_gbdt *m = gbdt_alloc(1, 1, n_features);
    if (m) {
        m->feature[0] = -1;
        walk_node(m, 0, 0, 0); /* a tree of depth 0 rooted at node 0 (calloc) */
    }
    if (m && (cascade_gbdt_set_margin(m, feature, scale) != 0 || cascade_gbdt__batch_build(m))) {
        cascade_gbdt_destroy(m);
        return NULL;
    }
    return m;
}

/* Every child index inside its own tree's node range and after its parent
 * (so walks end), every split feature < n_features. */
static int check_nodes(const cascade_gbdt *m, char *err, size_t errlen)
{
    for (size_t t = 0; t < m->n_trees; t++) {
        size_t lo = (size_t)m->root[t];
        size_t hi = t + 1 < m->n_trees ? (size_t)m->root[t + 1] : m->n_nodes;
        if (m->root[t] < 0 || lo >= hi || hi > m->n_nodes) {
            snprintf(err, errlen, "tree %zu: bad node range", t);
            return CASCADE_EFORMAT;
        }
        for (size_t i = lo; i < hi; i++) {
            if (m->feature[i] < 0)
                continue;
            if ((size_t)m->feature[i] >= m->n_features) {
                snprintf(err, errlen, "tree %zu: split on feature %d, the model takes %zu", t,
                         m->feature[i], m->n_features);
                return CASCADE_EFORMAT;
            }
            if (m->left[i] <= (int32_t)i || m->right[i] <= (int32_t)i || (size_t)m->left[i] >= hi ||
                (size_t)m->right[i] >= hi) {
                snprintf(err, errlen, "tree %zu: node %zu has a child outside the tree", t, i - lo);
                return CASCADE_EFORMAT;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ xgboost JSON */

static json_t *json_path(json_t *root, const char *const *keys, size_t n)
{
    for (size_t i = 0; root && i < n; i++)
        root = json_object_get(root, keys[i]);
    return root;
}

static double json_number_or_string(json_t *v, double def)
{
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v)) {
        char *end;
        double d = strtod(json_string_value(v), &end);
        if (end != json_string_value(v))
            return d;
    }
    return def;
}

/* Copy one xgboost tree (arrays of equal length) into nodes [off, off + n). */
static int tree_copy(cascade_gbdt *m, json_t *tree, size_t off, size_t n, char *err, size_t errlen)
{
    json_t *l = json_object_get(tree, "left_children"),
           *r = json_object_get(tree, "right_children");
    json_t *f = json_object_get(tree, "split_indices"),
           *c = json_object_get(tree, "split_conditions");
    json_t *d = json_object_get(tree, "default_left");
    for (size_t i = 0; i < n; i++) {
        json_int_t li = json_integer_value(json_array_get(l, i));
        json_int_t ri = json_integer_value(json_array_get(r, i));
        m->value[off + i] = (float)json_number_value(json_array_get(c, i));
        if (li < 0) {
            m->feature[off + i] = -1;
            continue;
        }
        if (li >= (json_int_t)n || ri < 0 || ri >= (json_int_t)n) {
            snprintf(err, errlen, "xgboost model: child index out of range");
            return CASCADE_EFORMAT;
        }
        m->feature[off + i] = (int32_t)json_integer_value(json_array_get(f, i));
        m->left[off + i] = (int32_t)(off + (size_t)li);
        m->right[off + i] = (int32_t)(off + (size_t)ri);
        m->default_left[off + i] =
            json_is_true(json_array_get(d, i)) || json_integer_value(json_array_get(d, i)) != 0;
    }
    return 0;
}

static int trees_size(json_t *trees, size_t *nodes, char *err, size_t errlen)
{
    *nodes = 0;
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        size_t n = json_array_size(json_object_get(tree, "left_children"));
        if (n == 0 || json_array_size(json_object_get(tree, "right_children")) != n ||
            json_array_size(json_object_get(tree, "split_indices")) != n ||
            json_array_size(json_object_get(tree, "split_conditions")) != n ||
            json_array_size(json_object_get(tree, "default_left")) != n) {
            snprintf(err, errlen, "xgboost model: tree %zu has missing or uneven node arrays", t);
            return CASCADE_EFORMAT;
        }
        *nodes += n;
    }
    return 0;
}

cascade_gbdt *cascade_gbdt_from_xgboost_json(const char *json, size_t len, size_t n_features,
                                             char *err, size_t errlen)
{
    static const char *const trees_at[] = {"learner", "gradient_booster", "model", "trees"};
    static const char *const base_at[] = {"learner", "learner_model_param", "base_score"};
    json_error_t jerr;
    cascade_gbdt *m = NULL;
    size_t nodes = 0;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "xgboost model: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    json_t *trees = json_path(root, trees_at, 4);
    if (!json_is_array(trees) || json_array_size(trees) == 0) {
        snprintf(err, errlen, "xgboost model: no learner.gradient_booster.model.trees");
        goto fail;
    }
    if (trees_size(trees, &nodes, err, errlen))
        goto fail;
    if (!(m = gbdt_alloc(nodes, json_array_size(trees), n_features))) {
        snprintf(err, errlen, "xgboost model: out of memory");
        goto fail;
    }
    m->base_score = (float)json_number_or_string(json_path(root, base_at, 3), 0.0);
    for (size_t t = 0, off = 0; t < m->n_trees; t++) {
        json_t *tree = json_array_get(trees, t);
        size_t n = json_array_size(json_object_get(tree, "left_children"));
        m->root[t] = (int32_t)off;
        if (tree_copy(m, tree, off, n, err, errlen))
            goto fail;
        off += n;
    }
    if (check_nodes(m, err, errlen) || gbdt_layout(m, err, errlen))
        goto fail;
    if (cascade_gbdt__batch_build(m) != 0) {
        snprintf(err, errlen, "xgboost model: out of memory");
        goto fail;
    }
    json_decref(root);
    return m;
fail:
    cascade_gbdt_destroy(m);
    json_decref(root);
    return NULL;
}

/* ------------------------------------------------------------ safetensors */

int cascade_gbdt_save(const cascade_gbdt *m, const char *path, const char *const *meta_keys,
                      const char *const *meta_values, size_t n_meta, char *err, size_t errlen)
{
    size_t nn = m->n_nodes, nt = m->n_trees;
    float *buf = calloc(4 * nn + nt + 1, sizeof *buf);
    float margin[2] = {(float)m->margin_feature, m->margin_scale};
    const char **keys = calloc(n_meta + 1, sizeof *keys), **vals = calloc(n_meta + 1, sizeof *vals);
    char nf[32];
    int rc = CASCADE_ENOMEM;
    if (!buf || !keys || !vals) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* Indices are stored as floats (safetensors F32 only): exact below 2^24. */
    if (nn >= (1u << 24)) {
        snprintf(err, errlen, "%s: %zu nodes is more than a model file holds", path, nn);
        rc = CASCADE_EINVAL;
        goto out;
    }
    float *feat = buf, *left = buf + nn, *right = buf + 2 * nn, *dl = buf + 3 * nn,
          *roots = buf + 4 * nn;
    for (size_t i = 0; i < nn; i++) {
        feat[i] = (float)m->feature[i];
        left[i] = (float)m->left[i];
        right[i] = (float)m->right[i];
        dl[i] = m->default_left[i];
    }
    for (size_t t = 0; t < nt; t++)
        roots[t] = (float)m->root[t];
    struct cascade_tensor tensors[] = {
        {"node_feature", 1, {(int64_t)nn}, feat},    {"node_value", 1, {(int64_t)nn}, m->value},
        {"node_left", 1, {(int64_t)nn}, left},       {"node_right", 1, {(int64_t)nn}, right},
        {"node_default_left", 1, {(int64_t)nn}, dl}, {"tree_root", 1, {(int64_t)nt}, roots},
        {"base_score", 1, {1}, &m->base_score},      {"margin", 1, {2}, margin},
    };
    size_t n_tensors = sizeof tensors / sizeof tensors[0] - (m->margin_feature < 0);
    snprintf(nf, sizeof nf, "%zu", m->n_features);
    keys[0] = "n_features";
    vals[0] = nf;
    for (size_t i = 0; i < n_meta; i++) {
        keys[i + 1] = meta_keys[i];
        vals[i + 1] = meta_values[i];
    }
    rc = cascade_safetensors_write(path, tensors, n_tensors, keys, vals, n_meta + 1, err, errlen);
out:
    free(buf);
    free(keys);
    free(vals);
    return rc;
}

static const float *tensor_1d(const cascade_safetensors *st, const char *name, size_t *n)
{
    const struct cascade_tensor *t = cascade_safetensors_find(st, name);
    if (!t || t->ndim != 1 || t->shape[0] < 1)
        return NULL;
    *n = (size_t)t->shape[0];
    return t->data;
}

static bool int_valued(float v, float lo, float hi)
{
    return v >= lo && v <= hi && v == floorf(v);
}

cascade_gbdt *cascade_gbdt_load(const char *path, char *err, size_t errlen)
{
    char lerr[512] = "";
    cascade_gbdt *m = NULL;
    cascade_safetensors *st = cascade_safetensors_read(path, lerr, sizeof lerr);
    size_t nn = 0, nv = 0, nl = 0, nr = 0, nd = 0, nt = 0, nb = 0;
    if (!st) {
        snprintf(err, errlen, "%s", lerr);
        return NULL;
    }
    const float *feat = tensor_1d(st, "node_feature", &nn), *val = tensor_1d(st, "node_value", &nv);
    const float *left = tensor_1d(st, "node_left", &nl), *right = tensor_1d(st, "node_right", &nr);
    const float *dl = tensor_1d(st, "node_default_left", &nd);
    const float *roots = tensor_1d(st, "tree_root", &nt), *base = tensor_1d(st, "base_score", &nb);
    const char *nf = cascade_safetensors_meta(st, "n_features");
    long n_features = nf ? strtol(nf, NULL, 10) : 0;
    if (!feat || !val || !left || !right || !dl || !roots || !base || nv != nn || nl != nn ||
        nr != nn || nd != nn || nb != 1 || n_features <= 0) {
        snprintf(err, errlen, "%s: not a tree ensemble (missing or uneven node tensors)", path);
        goto fail;
    }
    if (!(m = gbdt_alloc(nn, nt, (size_t)n_features))) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < nn; i++) {
        if (!int_valued(feat[i], -1, (float)n_features) || !int_valued(left[i], 0, (float)nn) ||
            !int_valued(right[i], 0, (float)nn) || !isfinite(val[i])) {
            snprintf(err, errlen, "%s: node %zu is damaged", path, i);
            goto fail;
        }
        m->feature[i] = (int32_t)feat[i];
        m->value[i] = val[i];
        m->left[i] = (int32_t)left[i];
        m->right[i] = (int32_t)right[i];
        m->default_left[i] = dl[i] != 0;
    }
    for (size_t t = 0; t < nt; t++) {
        if (!int_valued(roots[t], 0, (float)nn)) {
            snprintf(err, errlen, "%s: tree %zu has a bad root", path, t);
            goto fail;
        }
        m->root[t] = (int32_t)roots[t];
    }
    m->base_score = base[0];
    size_t nm = 0;
    const float *margin = tensor_1d(st, "margin", &nm);
    if (margin) {
        if (nm != 2 || !int_valued(margin[0], -1, (float)n_features - 1) || !isfinite(margin[1])) {
            snprintf(err, errlen, "%s: the margin tensor is damaged", path);
            goto fail;
        }
        m->margin_feature = (int32_t)margin[0];
        m->margin_scale = margin[1];
    }
    if (check_nodes(m, lerr, sizeof lerr) || gbdt_layout(m, lerr, sizeof lerr)) {
        snprintf(err, errlen, "%s: %s", path, lerr);
        goto fail;
    }
    if (cascade_gbdt__batch_build(m) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    m->file = st;
    return m;
fail:
    cascade_gbdt_destroy(m);
    cascade_safetensors_destroy(st);
    return NULL;
}
