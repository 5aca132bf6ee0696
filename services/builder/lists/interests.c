/* Per-user interest lists and decayed category affinities (see interests.h). */
#include "interests.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int cmp_newest_first(const void *a, const void *b)
{
    const struct cascade_ui_entry *x = a, *y = b;
    if (x->last_ts != y->last_ts)
        return x->last_ts > y->last_ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Aggregate one user's events into entries (scratch: slot per item, -1 = none;
 * seen: bitmask of behaviour types per entry). Returns the entry count. */
static size_t aggregate_user(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                             const struct cascade_user_events *ue, size_t u, int32_t *slot,
                             uint32_t *seen, struct cascade_ui_entry *out)
{
    size_t n = 0;
    for (size_t k = ue->off[u]; k < ue->off[u + 1]; k++) {
        const struct cascade_ds_event *e = &ds->events[ue->idx[k]];
        float wt = w->w[e->type];
        if (!(wt > 0))
            continue;
        int32_t s = slot[e->item];
        if (s < 0) {
            s = slot[e->item] = (int32_t)n++;
            out[s] = (struct cascade_ui_entry){e->item, e->type, 0, e->ts};
            seen[s] = 0;
        }
        struct cascade_ui_entry *en = &out[s];
        if (!(seen[s] & (1u << e->type))) {
            seen[s] |= 1u << e->type;
            en->weight += wt;
            if (wt > w->w[en->type])
                en->type = e->type;
        }
        if (e->ts > en->last_ts)
            en->last_ts = e->ts;
    }
    for (size_t i = 0; i < n; i++)
        slot[out[i].item] = -1;
    qsort(out, n, sizeof(*out), cmp_newest_first);
    return n;
}

int cascade_ui_build(const cascade_dataset *ds, const struct cascade_behaviour_weights *w,
                     size_t cap, struct cascade_ui *out)
{
    struct cascade_user_events ue = {0};
    int32_t *slot = NULL;
    uint32_t *seen = NULL;
    size_t total = 0, max_user = 0;
    int rc = CASCADE_ENOMEM;

    memset(out, 0, sizeof(*out));
    if (cascade_user_events_build(ds, &ue) != 0)
        return CASCADE_ENOMEM;
    for (size_t u = 0; u < ds->n_users; u++) {
        size_t n = ue.off[u + 1] - ue.off[u];
        total += n;
        if (n > max_user)
            max_user = n;
    }
    out->n_users = ds->n_users;
    out->off = calloc(ds->n_users + 1, sizeof(size_t));
    out->e = malloc((total + 1) * sizeof(*out->e));
    slot = malloc((ds->n_items + 1) * sizeof(int32_t));
    seen = malloc((max_user + 1) * sizeof(uint32_t));
    if (!out->off || !out->e || !slot || !seen)
        goto out;
    memset(slot, 0xff, (ds->n_items + 1) * sizeof(int32_t));
    size_t pos = 0;
    for (size_t u = 0; u < ds->n_users; u++) {
        /* Aggregate in place at the end of what is written so far. */
        size_t n = aggregate_user(ds, w, &ue, u, slot, seen, out->e + pos);
        if (cap && n > cap)
            n = cap;
        pos += n;
        out->off[u + 1] = pos;
    }
    rc = 0;
out:
    if (rc != 0)
        cascade_ui_free(out);
    cascade_user_events_free(&ue);
    free(slot);
    free(seen);
    return rc;
}

void cascade_ui_free(struct cascade_ui *ui)
{
    free(ui->off);
    free(ui->e);
    ui->off = NULL;
    ui->e = NULL;
}

int cascade_affinity_observe(struct cascade_affinity *a, const cascade_dataset *ds,
                             const struct cascade_ds_event *e,
                             const struct cascade_behaviour_weights *w, double half_life_s)
{
    return cascade_affinity_add(a, ds->items[e->item].category, e->type, e->ts, w, half_life_s);
}
