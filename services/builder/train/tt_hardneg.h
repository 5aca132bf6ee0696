/* Hard-negative candidates of the two-tower trainer (困难负样本): per user,
 * items the rank stage scored but cut, as logged by the orchestrator in
 * {ns}:user:{uid}:hardneg (read back from Redis, pipelined) or given offline
 * as a TSV of user_id<TAB>item_id lines. Ids are mapped to the data set's
 * rows; unknown users and items are skipped and counted. */
#ifndef CASCADE_BUILDER_TT_HARDNEG_H
#define CASCADE_BUILDER_TT_HARDNEG_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "redis.h"

/* (user index, item row = item index + 1) pairs, then per-user lists after
 * cascade_tt_hardneg_finish. Zero-initialise, then read, finish, use, free. */
struct cascade_tt_hardneg {
    struct cascade_tt_hard_pair {
        uint32_t user, row;
    } * pairs;
    size_t n_pairs, cap;
    size_t n_users; /* set by finish: the data set's user count */
    size_t *off;    /* set by finish: [n_users + 1], pairs[off[u]..off[u+1]) are u's */
    uint32_t *rows; /* set by finish: the rows of pairs, user-major, no duplicates */
    size_t read;    /* entries read (lines or list elements) */
    size_t unknown_users, unknown_items; /* entries skipped */
};

/* Add the lines of a TSV file: user_id<TAB>item_id (decimal, non-zero),
 * blank lines and lines starting with '#' ignored. A malformed line stops
 * the read with CASCADE_EINVAL and "FILE:LINE: ..." in err; CASCADE_EIO when
 * the file cannot be read. */
int cascade_tt_hardneg_read_file(struct cascade_tt_hardneg *h, const cascade_dataset *ds,
                                 const char *path, char *err, size_t errlen);

/* Add the lists {ns}:user:{uid}:hardneg of every user of ds, LRANGE
 * pipelined `batch` users per round trip. A list element that is not a
 * decimal item id is CASCADE_EINVAL ("KEY[i]: ..."); Redis failures are
 * CASCADE_EUNAVAILABLE / CASCADE_EIO with the server's message in err. */
int cascade_tt_hardneg_read_redis(struct cascade_tt_hardneg *h, const cascade_dataset *ds,
                                  cascade_redis *r, const char *ns, size_t batch, char *err,
                                  size_t errlen);

/* Group the pairs per user (sorted, deduplicated) for cascade_tt_hardneg_of.
 * 0 or CASCADE_ENOMEM. */
int cascade_tt_hardneg_finish(struct cascade_tt_hardneg *h, const cascade_dataset *ds);

/* User u's candidate rows (*n of them; NULL and 0 when none or not finished). */
const uint32_t *cascade_tt_hardneg_of(const struct cascade_tt_hardneg *h, uint32_t u, size_t *n);

/* Free everything; the struct may be reused after zeroing. */
void cascade_tt_hardneg_free(struct cascade_tt_hardneg *h);

#endif
