/* Fast non-cryptographic hashing (XXH3 from libxxhash) for experiment buckets,
 * Bloom filters and feature hashing. Stable across runs and machines. */
#ifndef CASCADE_HASH_H
#define CASCADE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of len bytes with a seed. */
uint64_t cascade_hash64(const void *data, size_t len, uint64_t seed);

/* 64-bit hash of a NUL-terminated string. */
uint64_t cascade_hash_str(const char *s, uint64_t seed);

/* 128-bit hash split in two independent 64-bit halves (for double hashing). */
void cascade_hash128(const void *data, size_t len, uint64_t seed, uint64_t *h1, uint64_t *h2);

/* Experiment bucket: hash(user_id ‖ salt) mod bucket_count. bucket_count > 0. */
uint32_t cascade_hash_bucket(const char *user_id, const char *salt, uint32_t bucket_count);

#endif
