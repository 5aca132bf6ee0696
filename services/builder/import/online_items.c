/* Export of the items added online ({ns}:items:online) into the build's
 * data directory (items.online.tsv), read by every job after items.tsv. */
#include "online_items.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "store.h"

static struct cascade_ds_item item_of_record(const cascade_v1_ItemRecord *rec)
{
    struct cascade_ds_item it = {.id = rec->item_id,
                                 .author_id = rec->author_id,
                                 .category = rec->category,
                                 .created_at = rec->created_at_s,
                                 .city = rec->city,
                                 .media_type = rec->media_type,
                                 .duration_s = rec->duration_s};
    it.n_tags = rec->tags_count < CASCADE_DS_MAX_TAGS ? rec->tags_count : CASCADE_DS_MAX_TAGS;
    memcpy(it.tags, rec->tags, it.n_tags * sizeof(it.tags[0]));
    snprintf(it.geohash, sizeof it.geohash, "%s", rec->geohash);
    return it;
}

/* The members of {ns}:items:online as ids; *ids is the caller's to free. */
static int online_ids(cascade_redis *r, const char *key, uint64_t **ids, size_t *n, char *err,
                      size_t errlen)
{
    redisReply *rep = NULL;
    *ids = NULL;
    *n = 0;
    int rc = cascade_redis_command(r, &rep, "ZRANGE %s 0 -1", key);
    if (rc != 0) {
        snprintf(err, errlen, "ZRANGE %s: %s", key, cascade_redis_error(r));
        return rc;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "ZRANGE %s: not a sorted set", key);
        rc = CASCADE_EFORMAT;
        goto out;
    }
    if (rep->elements == 0)
        goto out;
    if ((*ids = malloc(rep->elements * sizeof(**ids))) == NULL) {
        rc = CASCADE_ENOMEM;
        snprintf(err, errlen, "%s: out of memory for %zu members", key, rep->elements);
        goto out;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *m = rep->element[i];
        char *end = NULL;
        unsigned long long v = m->type == REDIS_REPLY_STRING ? strtoull(m->str, &end, 10) : 0;
        if (v == 0 || !end || *end != '\0') {
            snprintf(err, errlen, "%s: member %zu is not an item id", key, i);
            rc = CASCADE_EFORMAT;
            goto out;
        }
        (*ids)[(*n)++] = (uint64_t)v;
    }
out:
    freeReplyObject(rep);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* Take the exclusive lock DIR/items.online.tsv.lock (created when absent),
 * waiting for another export to finish. The lock is released when *fd is
 * closed. */
static int lock_export(const char *dir, int *fd, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.lock", dir, CASCADE_DS_ONLINE_ITEMS);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CASCADE_EIO;
    }
    int rc;
    while ((rc = flock(*fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        snprintf(err, errlen, "%s: lock failed: %s", path, strerror(errno));
        close(*fd);
        *fd = -1;
        return CASCADE_EIO;
    }
    return 0;
}

int cascade_online_items_export(cascade_redis *r, const char *ns, const char *dir, size_t *exported,
                                char *err, size_t errlen)
{
    char key[CASCADE_KEY_MAX];
    uint64_t *ids = NULL;
    cascade_v1_ItemRecord *recs = NULL;
    bool *found = NULL;
    cascade_dataset *ds = NULL;
    size_t n = 0, written = 0;
    int rc, lock_fd = -1;
    *exported = 0;
    snprintf(key, sizeof key, "%s:items:online", ns);
    if ((rc = online_ids(r, key, &ids, &n, err, errlen)) != 0 || n == 0)
        goto out;
    /* One export at a time per directory (the nightly and the incremental
     * job share it), reading Redis and merging the previous file under the
     * lock: an export that read older records can never write after one
     * that read newer ones. Nothing to export: no lock, nothing written. */
    if ((rc = lock_export(dir, &lock_fd, err, errlen)) != 0)
        goto out;
    free(ids);
    ids = NULL;
    if ((rc = online_ids(r, key, &ids, &n, err, errlen)) != 0 || n == 0)
        goto out;
    recs = calloc(n, sizeof(*recs));
    found = calloc(n, sizeof(*found));
    ds = cascade_dataset_create();
    if (!recs || !found || !ds) {
        rc = CASCADE_ENOMEM;
        snprintf(err, errlen, "%s: out of memory for %zu items", key, n);
        goto out;
    }
    if ((rc = cascade_store_get_items(r, ns, ids, n, recs, found)) != 0) {
        snprintf(err, errlen, "%s: reading the item records: %s", key, cascade_redis_error(r));
        goto out;
    }
    /* The earlier export first, so that its rows stay and a member's row
     * replaces its own. */
    if ((rc = cascade_dataset_read_online_items(ds, dir, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!found[i])
            continue; /* a member without a record has nothing to export */
        struct cascade_ds_item it = item_of_record(&recs[i]);
        if ((rc = cascade_dataset_put_item(ds, &it)) != 0) {
            snprintf(err, errlen, "%s: out of memory", key);
            goto out;
        }
        written++;
    }
    if (written &&
        (rc = cascade_dataset_write_items(ds, dir, CASCADE_DS_ONLINE_ITEMS, err, errlen)) != 0)
        goto out;
    *exported = written;
out:
    if (lock_fd >= 0)
        close(lock_fd); /* releases the lock */
    cascade_dataset_destroy(ds);
    free(found);
    free(recs);
    free(ids);
    return rc;
}
