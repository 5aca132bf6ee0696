/* Hashing over XXH3 (libxxhash): stable 64/128-bit hashes for experiment
 * buckets, Bloom filter positions and feature hashing. */
#include "hash.h"

#include <string.h>

/* XXH3_state_t is only complete with this, so it can live on the stack. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

uint64_t cascade_hash64(const void *data, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(data, len, seed);
}

uint64_t cascade_hash_str(const char *s, uint64_t seed)
{
    return XXH3_64bits_withSeed(s, strlen(s), seed);
}

void cascade_hash128(const void *data, size_t len, uint64_t seed, uint64_t *h1, uint64_t *h2)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(data, len, seed);
    *h1 = h.low64;
    *h2 = h.high64;
}

uint32_t cascade_hash_bucket(const char *user_id, const char *salt, uint32_t bucket_count)
{
    /* Streaming keeps user_id ‖ salt exact without a temporary buffer, and
     * gives the same value as hashing the concatenated bytes at once. */
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    XXH3_64bits_update(&state, user_id, strlen(user_id));
    XXH3_64bits_update(&state, salt, strlen(salt));
    uint64_t h = XXH3_64bits_digest(&state);
    return bucket_count ? (uint32_t)(h % bucket_count) : 0;
}
