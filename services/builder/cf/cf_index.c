/* The CF interaction index: capped user -> items lists from the interest
 * lists of interests.c, their transpose, item popularity and the seeded
 * per-item user samples (selection sampling, so a sample comes out sorted). */
#include "cf_index.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "interests.h"
#include "rng.h"

/* Copy each user's newest `cap` interest entries into the compact CSR and
 * count every entry (uncapped) towards its item's popularity. */
static int build_user_side(const struct cascade_ui *ui, size_t n_items, size_t cap,
                           struct cascade_cf_index *x)
{
    size_t kept = 0;
    for (size_t u = 0; u < ui->n_users; u++) {
        size_t n = ui->off[u + 1] - ui->off[u];
        kept += cap && n > cap ? cap : n;
    }
    x->uoff = calloc(ui->n_users + 1, sizeof(size_t));
    x->uitem = malloc((kept + 1) * sizeof(uint32_t));
    x->uw = malloc((kept + 1) * sizeof(float));
    x->item_popularity = calloc(n_items + 1, sizeof(uint32_t));
    if (!x->uoff || !x->uitem || !x->uw || !x->item_popularity)
        return CASCADE_ENOMEM;
    size_t pos = 0;
    for (size_t u = 0; u < ui->n_users; u++) {
        size_t n = ui->off[u + 1] - ui->off[u];
        for (size_t a = 0; a < n; a++) {
            const struct cascade_ui_entry *e = &ui->e[ui->off[u] + a];
            x->item_popularity[e->item]++;
            if (cap && a >= cap)
                continue;
            x->uitem[pos] = e->item;
            x->uw[pos++] = e->weight;
        }
        x->uoff[u + 1] = pos;
    }
    x->entries = kept;
    return 0;
}

/* Transpose: walking users in order leaves each item's users ascending. */
static int build_item_side(struct cascade_cf_index *x)
{
    size_t n = x->n_items;
    size_t *fill = malloc((n + 1) * sizeof(size_t));
    x->ioff = calloc(n + 1, sizeof(size_t));
    x->iuser = malloc((x->entries + 1) * sizeof(uint32_t));
    x->iw = malloc((x->entries + 1) * sizeof(float));
    if (!fill || !x->ioff || !x->iuser || !x->iw) {
        free(fill);
        return CASCADE_ENOMEM;
    }
    for (size_t a = 0; a < x->entries; a++)
        x->ioff[x->uitem[a] + 1]++;
    for (size_t i = 0; i < n; i++)
        x->ioff[i + 1] += x->ioff[i];
    memcpy(fill, x->ioff, (n + 1) * sizeof(size_t));
    for (size_t u = 0; u < x->n_users; u++) {
        for (size_t a = x->uoff[u]; a < x->uoff[u + 1]; a++) {
            size_t at = fill[x->uitem[a]]++;
            x->iuser[at] = (uint32_t)u;
            x->iw[at] = x->uw[a];
        }
    }
    free(fill);
    return 0;
}

/* Knuth's selection sampling (Algorithm S): each user of the item is taken
 * with probability (still needed)/(still left), which yields exactly `cap`
 * users, uniformly, in ascending order, without scratch memory. The stream
 * is seeded by (seed, item id), so samples do not depend on item order. */
static int build_samples(const cascade_dataset *ds, size_t cap, uint64_t seed,
                         struct cascade_cf_index *x)
{
    size_t n = x->n_items, total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = cascade_cf_item_len(x, i);
        total += len > cap ? cap : len;
    }
    x->soff = calloc(n + 1, sizeof(size_t));
    x->suser = malloc((total + 1) * sizeof(uint32_t));
    if (!x->soff || !x->suser)
        return CASCADE_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *users = x->iuser + x->ioff[i];
        size_t len = cascade_cf_item_len(x, i);
        if (len <= cap) {
            memcpy(x->suser + pos, users, len * sizeof(uint32_t));
            pos += len;
        } else {
            struct cascade_rng rng;
            cascade_rng_seed(&rng, seed ^ (ds->items[i].id * 0xD6E8FEB86659FD93ULL));
            size_t need = cap;
            for (size_t t = 0; t < len && need > 0; t++)
                if (cascade_rng_below(&rng, len - t) < need) {
                    x->suser[pos++] = users[t];
                    need--;
                }
        }
        x->soff[i + 1] = pos;
    }
    return 0;
}

int cascade_cf_index_build(const cascade_dataset *ds, const struct cascade_cf_index_opts *o,
                           struct cascade_cf_index *out)
{
    struct cascade_ui ui = {0};
    memset(out, 0, sizeof(*out));
    out->n_users = ds->n_users;
    out->n_items = ds->n_items;
    /* Uncapped, so that item popularity counts every interested user. */
    int rc = cascade_ui_build(ds, o->weights, 0, &ui);
    if (rc == 0)
        rc = build_user_side(&ui, ds->n_items, o->max_items_per_user, out);
    cascade_ui_free(&ui);
    if (rc == 0)
        rc = build_item_side(out);
    if (rc == 0 && o->max_users_per_item > 0)
        rc = build_samples(ds, o->max_users_per_item, o->seed, out);
    if (rc != 0)
        cascade_cf_index_free(out);
    return rc;
}

void cascade_cf_index_free(struct cascade_cf_index *x)
{
    free(x->uoff);
    free(x->uitem);
    free(x->uw);
    free(x->ioff);
    free(x->iuser);
    free(x->iw);
    free(x->item_popularity);
    free(x->soff);
    free(x->suser);
    memset(x, 0, sizeof(*x));
}
