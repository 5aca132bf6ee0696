/* Warm start of cascade-build train-two-tower: a new model starts from the
 * previous version's weights. Embedding rows are carried over by id through
 * both versions' maps (ids the previous version did not know keep their
 * fresh initialisation), dense layers and fixed-bucket tables are copied. */
#ifndef CASCADE_BUILDER_TT_WARM_H
#define CASCADE_BUILDER_TT_WARM_H

#include <stddef.h>
#include <stdint.h>

#include "twotower.h"
#include "twotower_maps.h"

/* The new model's rows: keys[k][r] is the id of row r + 1 of kind k (users:
 * cascade_twotower_user_key of the id). Borrowed. */
struct cascade_tt_ids {
    const uint64_t *keys[CASCADE_TT_MAP_KINDS];
    size_t n[CASCADE_TT_MAP_KINDS];
};

struct cascade_tt_warm_report {
    size_t tensors;      /* parameters copied whole (dense layers, bucket tables) */
    size_t rows_carried; /* embedding rows found by id in the previous version */
    size_t rows_fresh;   /* embedding rows of ids the previous version did not know */
};

/* Copy into m the weights of version `version` in dir (<version>.safetensors
 * and <version>.maps.tsv). The model widths (emb_dim, hidden, out_dim) must
 * match, else nothing is copied and CASCADE_EINVAL says why; a file that
 * does not load gives its error. 0 with rep filled on success. */
int cascade_tt_warm_start(cascade_twotower *m, const struct cascade_tt_ids *ids, const char *dir,
                          const char *version, struct cascade_tt_warm_report *rep, char *err,
                          size_t errlen);

/* The incremental update (train-two-tower --incremental) trains only the
 * id-keyed embedding tables (users, items and history items, authors,
 * categories, cities): mark every other parameter of m (the dense layers of
 * both towers and the fixed bucket tables: ages, genders) frozen, so the
 * optimiser leaves it bit-identical. Returns how many were frozen. */
size_t cascade_tt_freeze_dense(cascade_twotower *m);

/* What an incremental update needs of the published version `version` in
 * dir: its configuration (widths, temperature) into *cfg and the reference
 * time of its data (the maps' ref_ts: the newest event it was trained on)
 * into *ref_ts. 0, or the error of loading the model or the maps with err. */
int cascade_tt_version_info(const char *dir, const char *version,
                            struct cascade_twotower_config *cfg, int64_t *ref_ts, char *err,
                            size_t errlen);

#endif
