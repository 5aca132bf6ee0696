/* Bloom filter arithmetic for the per-user exposure filter: sizing from a
 * target false-positive rate, and the k bit positions of a key by double
 * hashing (h1 + i·h2 mod m). The bits themselves live in Redis strings; these
 * functions only compute. Pure functions, thread-safe. */
#ifndef CASCADE_BLOOM_H
#define CASCADE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cascade_bloom_params {
    uint64_t bits;   /* m */
    uint32_t hashes; /* k */
};

/* m = ceil(-n ln p / (ln 2)^2), k = round(m/n ln 2), clamped to >= 1.
 * Returns CASCADE_EINVAL for n == 0 or p outside (0,1). */
int cascade_bloom_size(uint64_t expected_items, double fp_rate, struct cascade_bloom_params *out);

/* Fill positions[0..k) with the bit positions of item_id. */
void cascade_bloom_positions(const struct cascade_bloom_params *p, uint64_t item_id,
                             uint64_t *positions);

/* Test positions against a bitmap as Redis stores it (bit 0 = MSB of byte 0,
 * as SETBIT numbers them). Bytes past len read as zero. */
bool cascade_bloom_test_bitmap(const struct cascade_bloom_params *p, const uint8_t *bitmap,
                               size_t len, uint64_t item_id);

/* Set an item's bits in a local bitmap of at least ceil(bits/8) bytes. */
void cascade_bloom_set_bitmap(const struct cascade_bloom_params *p, uint8_t *bitmap,
                              uint64_t item_id);

#endif
