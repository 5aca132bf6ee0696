/* Warm start of the two-tower trainer (tt_warm.h): the id-keyed embedding
 * tables are remapped row by row through the previous version's maps, every
 * other parameter is copied when its shape is unchanged. */
#include "tt_warm.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

/* Which id map indexes each embedding table (the others are not id-keyed). */
static const struct {
    const char *param;
    enum cascade_tt_map_kind kind;
} id_tables[] = {
    {"user.user_id.weight", CASCADE_TT_MAP_USER},
    {"user.city.weight", CASCADE_TT_MAP_CITY},
    {"user.history.weight", CASCADE_TT_MAP_ITEM},
    {"item.item_id.weight", CASCADE_TT_MAP_ITEM},
    {"item.author.weight", CASCADE_TT_MAP_AUTHOR},
    {"item.category.weight", CASCADE_TT_MAP_CATEGORY},
};

static int id_kind(const char *param)
{
    for (size_t i = 0; i < sizeof(id_tables) / sizeof(id_tables[0]); i++)
        if (strcmp(param, id_tables[i].param) == 0)
            return (int)id_tables[i].kind;
    return -1;
}

static void copy_row(struct cascade_nn_param *dst, size_t to, const struct cascade_nn_param *src,
                     size_t from)
{
    memcpy(dst->value + to * dst->cols, src->value + from * src->cols, dst->cols * sizeof(float));
}

/* Rows of dst (kind k) from src through the previous maps; row 0 (unknown) as is. */
static void remap_table(struct cascade_nn_param *dst, const struct cascade_nn_param *src,
                        enum cascade_tt_map_kind k, const struct cascade_tt_ids *ids,
                        const cascade_twotower_maps *prev, struct cascade_tt_warm_report *rep)
{
    if (dst->rows > 0 && src->rows > 0)
        copy_row(dst, 0, src, 0);
    for (size_t r = 1; r < dst->rows && r - 1 < ids->n[k]; r++) {
        uint32_t old = cascade_twotower_maps_row(prev, k, ids->keys[k][r - 1]);
        if (old != 0 && old < src->rows) {
            copy_row(dst, r, src, old);
            rep->rows_carried++;
        } else {
            rep->rows_fresh++;
        }
    }
}

static int same_widths(const struct cascade_twotower_config *a,
                       const struct cascade_twotower_config *b, char *err, size_t errlen)
{
    if (a->emb_dim == b->emb_dim && a->hidden == b->hidden && a->out_dim == b->out_dim)
        return 0;
    snprintf(err, errlen, "widths differ (emb %zu/hidden %zu/out %zu before, %zu/%zu/%zu now)",
             b->emb_dim, b->hidden, b->out_dim, a->emb_dim, a->hidden, a->out_dim);
    return CASCADE_EINVAL;
}

int cascade_tt_warm_start(cascade_twotower *m, const struct cascade_tt_ids *ids, const char *dir,
                          const char *version, struct cascade_tt_warm_report *rep, char *err,
                          size_t errlen)
{
    char path[1200];
    cascade_twotower *prev = NULL;
    cascade_twotower_maps *maps = NULL;
    memset(rep, 0, sizeof(*rep));
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, version);
    int rc = cascade_twotower_load(path, &prev, err, errlen);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s.maps.tsv", dir, version);
        rc = cascade_twotower_maps_read(path, &maps, err, errlen);
    }
    if (rc == 0)
        rc = same_widths(cascade_twotower_config_get(m), cascade_twotower_config_get(prev), err,
                         errlen);
    if (rc != 0)
        goto out;
    cascade_nn_params *dst = cascade_twotower_params(m), *src = cascade_twotower_params(prev);
    for (size_t i = 0; i < cascade_nn_params_count(dst); i++) {
        struct cascade_nn_param *d = cascade_nn_params_at(dst, i);
        const struct cascade_nn_param *s = cascade_nn_params_find(src, d->name);
        if (!s || s->cols != d->cols)
            continue;
        int k = id_kind(d->name);
        if (k >= 0) {
            remap_table(d, s, (enum cascade_tt_map_kind)k, ids, maps, rep);
        } else if (s->rows == d->rows) {
            memcpy(d->value, s->value, d->size * sizeof(float));
            rep->tensors++;
        }
    }
out:
    cascade_twotower_destroy(prev);
    cascade_twotower_maps_destroy(maps);
    return rc;
}

size_t cascade_tt_freeze_dense(cascade_twotower *m)
{
    cascade_nn_params *ps = cascade_twotower_params(m);
    size_t frozen = 0;
    for (size_t i = 0; i < cascade_nn_params_count(ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(ps, i);
        p->frozen = id_kind(p->name) < 0;
        frozen += p->frozen;
    }
    return frozen;
}

int cascade_tt_version_info(const char *dir, const char *version,
                            struct cascade_twotower_config *cfg, int64_t *ref_ts, char *err,
                            size_t errlen)
{
    char path[1200];
    cascade_twotower *m = NULL;
    cascade_twotower_maps *maps = NULL;
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, version);
    int rc = cascade_twotower_load(path, &m, err, errlen);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/%s.maps.tsv", dir, version);
        rc = cascade_twotower_maps_read(path, &maps, err, errlen);
    }
    if (rc == 0) {
        *cfg = *cascade_twotower_config_get(m);
        *ref_ts = cascade_twotower_maps_ref_ts(maps);
    }
    cascade_twotower_destroy(m);
    cascade_twotower_maps_destroy(maps);
    return rc;
}
