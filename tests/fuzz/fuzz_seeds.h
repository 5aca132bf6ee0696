/* The seed corpus: valid messages for every fuzz target, built from our protos
 * at run time (nothing binary is committed). */
#ifndef CASCADE_FUZZ_SEEDS_H
#define CASCADE_FUZZ_SEEDS_H

#include <stddef.h>
#include <stdint.h>

/* Called once per seed with the target's name and the serialized bytes
 * (borrowed for the call). A non-zero return stops the walk and is returned. */
typedef int (*cascade_fuzz_seed_fn)(void *ctx, const char *target, const uint8_t *data,
                                    size_t size);

/* Build every seed and hand it to fn. Returns 0, fn's non-zero return, or
 * CASCADE_ENOMEM. Not thread-safe (uses a static encode buffer). */
int cascade_fuzz_seeds_each(cascade_fuzz_seed_fn fn, void *ctx);

/* Write every seed to dir/<target>/seed-<n> (directories created). Returns 0
 * or a negative code with a message on stderr. */
int cascade_fuzz_seeds_write(const char *dir);

#endif
