/* The catalogue's online path in the nightly build: items added with
 * PutItems live in Redis ({ns}:items:online, records {ns}:item:{id}); the
 * build exports them into DATA/items.online.tsv, which every job reads after
 * items.tsv (dataset.h), so they stay in the new/geo/city/author lists and
 * get indexed by the next two-tower training (docs/closed-loop.md). */
#ifndef CASCADE_BUILDER_ONLINE_ITEMS_H
#define CASCADE_BUILDER_ONLINE_ITEMS_H

#include <stddef.h>

#include "redis.h"

/* Merge every member of ZSET {ns}:items:online that has a record into
 * dir/items.online.tsv: the file's earlier rows are kept (an item put once
 * stays in the data, as items.tsv keeps its rows), a member's row is
 * replaced by its current record. The file is written to a temporary name
 * and renamed, so readers see the old or the new file, never a part. With
 * no member nothing is written. *exported = the members written. Borrows r
 * (one connection, not thread-safe). Returns 0, or a negative code with the
 * key or path in err (Redis unreachable, a record that does not decode, the
 * directory not writable). */
int cascade_online_items_export(cascade_redis *r, const char *ns, const char *dir, size_t *exported,
                                char *err, size_t errlen);

#endif
