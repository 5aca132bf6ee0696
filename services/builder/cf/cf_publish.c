/* Writes CF lists into a fresh generation through the family writer and
 * publishes it (see cf_publish.h). */
#include "cf_publish.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "family.h"
#include "progress.h"
#include "store.h"

#define ENCODE_MAX 8192 /* > cascade_v1_NeighbourList_size and _UserNeighbourList_size */

/* Writes row `row`'s key suffix (the entity id) and encodes its list. */
typedef int (*encode_row_fn)(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                             size_t row, char *suffix, size_t suffix_len, uint8_t *buf,
                             size_t *len);

static int encode_item_row(const cascade_dataset *ds, const struct cascade_cf_lists *l, size_t row,
                           char *suffix, size_t suffix_len, uint8_t *buf, size_t *len)
{
    cascade_v1_NeighbourList list;
    snprintf(suffix, suffix_len, "%" PRIu64, ds->items[row].id);
    memset(&list, 0, sizeof(list));
    list.neighbours_count = (pb_size_t)l->count[row];
    for (size_t t = 0; t < l->count[row]; t++) {
        list.neighbours[t].item_id = ds->items[l->nbr[row * l->k + t]].id;
        list.neighbours[t].score = l->score[row * l->k + t];
    }
    return cascade_record_encode(cascade_v1_NeighbourList_fields, &list, buf, ENCODE_MAX, len);
}

static int encode_user_row(const cascade_dataset *ds, const struct cascade_cf_lists *l, size_t row,
                           char *suffix, size_t suffix_len, uint8_t *buf, size_t *len)
{
    cascade_v1_UserNeighbourList list;
    snprintf(suffix, suffix_len, "%s", ds->users[row].id);
    memset(&list, 0, sizeof(list));
    list.neighbours_count = (pb_size_t)l->count[row];
    for (size_t t = 0; t < l->count[row]; t++) {
        cascade_v1_UserNeighbour *nb = &list.neighbours[t];
        const char *id = ds->users[l->nbr[row * l->k + t]].id;
        size_t n = strnlen(id, sizeof(nb->user_id) - 1); /* a copy, not snprintf: hot loop */
        memcpy(nb->user_id, id, n);
        nb->user_id[n] = '\0';
        nb->score = l->score[row * l->k + t];
    }
    return cascade_record_encode(cascade_v1_UserNeighbourList_fields, &list, buf, ENCODE_MAX, len);
}

/* SET every non-empty row into the writer's generation. */
static int write_rows(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                      encode_row_fn encode, struct cascade_family_writer *w, bool quiet,
                      struct cascade_cf_publish_summary *s, char *err, size_t errlen)
{
    uint8_t buf[ENCODE_MAX];
    struct cascade_progress prog;
    char suffix[CASCADE_DS_ID_MAX + 1];
    int rc = 0;
    cascade_progress_start(&prog, w->family, "lists written", l->n, quiet);
    for (size_t row = 0; row < l->n && rc == 0; row++) {
        size_t len = 0;
        if (l->count[row] == 0) {
            s->empty++;
            continue;
        }
        if ((rc = encode(ds, l, row, suffix, sizeof(suffix), buf, &len)) != 0) {
            snprintf(err, errlen, "%s: the neighbour list of %s does not encode", w->family,
                     suffix);
            return rc;
        }
        rc = cascade_family_set(w, suffix, buf, len);
        s->written++;
        if ((row & 1023) == 0)
            cascade_progress_update(&prog, row);
    }
    cascade_progress_finish(&prog, l->n);
    if (rc != 0)
        cascade_family_error(w, "writing lists", err, errlen);
    return rc;
}

static int publish(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                   encode_row_fn encode, cascade_redis *r, const struct cascade_cf_publish_opts *o,
                   struct cascade_cf_publish_summary *s, char *err, size_t errlen)
{
    struct cascade_family_writer w;
    int64_t start_us = cascade_now_us();
    memset(s, 0, sizeof(*s));
    int rc = cascade_family_begin(&w, r, o->ns, o->family, o->pipeline, err, errlen);
    if (rc == 0)
        rc = write_rows(ds, l, encode, &w, o->quiet, s, err, errlen);
    if (rc == 0)
        rc = cascade_family_publish(&w, err, errlen);
    if (rc != 0)
        return rc;
    s->gen = w.gen;
    s->seconds = (double)(cascade_now_us() - start_us) / 1e6;
    return 0;
}

int cascade_cf_publish_items(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                             cascade_redis *r, const struct cascade_cf_publish_opts *o,
                             struct cascade_cf_publish_summary *s, char *err, size_t errlen)
{
    return publish(ds, l, encode_item_row, r, o, s, err, errlen);
}

int cascade_cf_publish_users(const cascade_dataset *ds, const struct cascade_cf_lists *l,
                             cascade_redis *r, const struct cascade_cf_publish_opts *o,
                             struct cascade_cf_publish_summary *s, char *err, size_t errlen)
{
    return publish(ds, l, encode_user_row, r, o, s, err, errlen);
}
