/* Hard-negative candidates for train-two-tower: the TSV and Redis readers
 * (ids mapped through the data set's indexes, unknown ones counted) and the
 * per-user grouping the trainer hands to cascade_negsample_draw. */
#include "tt_hardneg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"

static int push(struct cascade_tt_hardneg *h, uint32_t user, uint32_t row)
{
    if (h->n_pairs == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        void *p = realloc(h->pairs, cap * sizeof(*h->pairs));
        if (!p)
            return CASCADE_ENOMEM;
        h->pairs = p;
        h->cap = cap;
    }
    h->pairs[h->n_pairs++] = (struct cascade_tt_hard_pair){user, row};
    return 0;
}

/* A decimal, non-zero uint64 filling the whole of s. */
static int parse_item_id(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return CASCADE_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v == 0)
        return CASCADE_EINVAL;
    *out = v;
    return 0;
}

/* Map one (user index, item id) entry; unknown items are counted. */
static int add_item(struct cascade_tt_hardneg *h, const cascade_dataset *ds, uint32_t user,
                    uint64_t item_id)
{
    long item = cascade_dataset_find_item(ds, item_id);
    h->read++;
    if (item < 0) {
        h->unknown_items++;
        return 0;
    }
    return push(h, user, (uint32_t)item + 1);
}

/* One non-comment line "user<TAB>item" (newline stripped). */
static int parse_line(struct cascade_tt_hardneg *h, const cascade_dataset *ds, char *line,
                      const char *path, size_t lineno, char *err, size_t errlen)
{
    char *tab = strchr(line, '\t');
    uint64_t item_id;
    if (!tab || tab == line || strchr(tab + 1, '\t') || parse_item_id(tab + 1, &item_id) != 0) {
        snprintf(err, errlen,
                 "%s:%zu: expected user_id<TAB>item_id (a non-zero decimal), got '%.80s'", path,
                 lineno, line);
        return CASCADE_EINVAL;
    }
    *tab = '\0';
    long user = cascade_dataset_find_user(ds, line);
    if (user < 0) {
        h->read++;
        h->unknown_users++;
        return 0;
    }
    return add_item(h, ds, (uint32_t)user, item_id);
}

int cascade_tt_hardneg_read_file(struct cascade_tt_hardneg *h, const cascade_dataset *ds,
                                 const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CASCADE_EIO;
    }
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        rc = parse_line(h, ds, line, path, lineno, err, errlen);
        if (rc == CASCADE_ENOMEM)
            snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = CASCADE_EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Queue LRANGE of users [from, to), then read and map their lists. */
static int redis_batch(struct cascade_tt_hardneg *h, const cascade_dataset *ds, cascade_redis *r,
                       const char *ns, size_t from, size_t to, char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    size_t sent = 0;
    int rc = 0;
    for (size_t u = from; u < to && rc == 0; u++) {
        rc = cascade_redis_append(r, "LRANGE %s 0 -1",
                                  cascade_key_user_hardneg(key, ns, ds->users[u].id));
        sent += rc == 0;
    }
    /* Every queued reply is read, even after a failure, so the connection
     * stays in step. */
    for (size_t i = 0; i < sent; i++) {
        redisReply *rep = NULL;
        int rr = cascade_redis_get_reply(r, &rep);
        if (rr == 0 && rep->type != REDIS_REPLY_ARRAY)
            rr = CASCADE_EIO;
        if (rr && !rc) {
            snprintf(err, errlen, "%s", cascade_redis_error(r));
            rc = rr;
        }
        for (size_t k = 0; rr == 0 && rc == 0 && k < rep->elements; k++) {
            uint64_t id;
            const redisReply *el = rep->element[k];
            if (el->type != REDIS_REPLY_STRING || parse_item_id(el->str, &id) != 0) {
                snprintf(err, errlen, "%s[%zu]: not an item id (expected a non-zero decimal)",
                         cascade_key_user_hardneg(key, ns, ds->users[from + i].id), k);
                rc = CASCADE_EINVAL;
            } else {
                rc = add_item(h, ds, (uint32_t)(from + i), id);
            }
        }
        freeReplyObject(rep);
    }
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "out of memory reading hard negatives");
    return rc;
}

int cascade_tt_hardneg_read_redis(struct cascade_tt_hardneg *h, const cascade_dataset *ds,
                                  cascade_redis *r, const char *ns, size_t batch, char *err,
                                  size_t errlen)
{
    if (batch == 0)
        batch = 1;
    for (size_t from = 0; from < ds->n_users; from += batch) {
        size_t to = ds->n_users - from < batch ? ds->n_users : from + batch;
        int rc = redis_batch(h, ds, r, ns, from, to, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_pair(const void *a, const void *b)
{
    const struct cascade_tt_hard_pair *x = a, *y = b;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

int cascade_tt_hardneg_finish(struct cascade_tt_hardneg *h, const cascade_dataset *ds)
{
    free(h->off);
    free(h->rows);
    h->n_users = ds->n_users;
    h->off = calloc(ds->n_users + 1, sizeof(size_t));
    h->rows = malloc((h->n_pairs + 1) * sizeof(uint32_t));
    if (!h->off || !h->rows)
        return CASCADE_ENOMEM;
    qsort(h->pairs, h->n_pairs, sizeof(*h->pairs), cmp_pair);
    size_t w = 0;
    for (size_t i = 0; i < h->n_pairs; i++) {
        const struct cascade_tt_hard_pair *p = &h->pairs[i];
        if (p->user >= ds->n_users || (i > 0 && cmp_pair(p, p - 1) == 0))
            continue;
        h->rows[w++] = p->row;
        h->off[p->user + 1]++;
    }
    for (size_t u = 0; u < ds->n_users; u++)
        h->off[u + 1] += h->off[u];
    return 0;
}

const uint32_t *cascade_tt_hardneg_of(const struct cascade_tt_hardneg *h, uint32_t u, size_t *n)
{
    *n = 0;
    if (!h || !h->off || u >= h->n_users)
        return NULL;
    *n = h->off[u + 1] - h->off[u];
    return *n ? h->rows + h->off[u] : NULL;
}

void cascade_tt_hardneg_free(struct cascade_tt_hardneg *h)
{
    free(h->pairs);
    free(h->off);
    free(h->rows);
    memset(h, 0, sizeof(*h));
}
