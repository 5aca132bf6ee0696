/* Bloom filter arithmetic for the exposure filter: optimal sizing, and bit
 * positions by double hashing over one 128-bit XXH3 of the item id. Bit
 * numbering follows Redis SETBIT (bit 0 is the most significant bit of byte 0). */
#include "bloom.h"

#include <math.h>

#include "error.h"
#include "hash.h"

/* Fixed so every process (filter service, tools) computes the same positions. */
#define BLOOM_SEED 0x63617363616465ULL /* "cascade" */

int cascade_bloom_size(uint64_t expected_items, double fp_rate, struct cascade_bloom_params *out)
{
    if (expected_items == 0 || !(fp_rate > 0.0 && fp_rate < 1.0))
        return CASCADE_EINVAL;
    double ln2 = log(2.0);
    double n = (double)expected_items;
    double m = ceil(-n * log(fp_rate) / (ln2 * ln2));
    if (m < 1.0)
        m = 1.0;
    if (m > 4294967296.0) /* Redis strings top out at 512 MiB = 2^32 bits */
        return CASCADE_EINVAL;
    double k = round(m / n * ln2);
    out->bits = (uint64_t)m;
    out->hashes = k < 1.0 ? 1 : (uint32_t)k;
    return 0;
}

/* Double-hashing state for one item: probe i is (h1 + i·h2) mod m. */
struct bloom_probe {
    uint64_t pos, step, m;
};

static struct bloom_probe probe_start(uint64_t bits, uint64_t item_id)
{
    /* Hash the id's little-endian bytes so positions do not depend on the host. */
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(item_id >> (8 * i));
    uint64_t h1, h2;
    cascade_hash128(bytes, sizeof(bytes), BLOOM_SEED, &h1, &h2);
    struct bloom_probe pr = {h1 % bits, h2 % bits, bits};
    if (pr.step == 0)
        pr.step = 1; /* a zero step would put all k probes on one bit */
    return pr;
}

static uint64_t probe_next(struct bloom_probe *pr)
{
    uint64_t cur = pr->pos;
    /* pos + step < 2m <= 2^64, so this is (h1 + i·h2) mod m without overflow. */
    pr->pos = pr->pos + pr->step >= pr->m ? pr->pos + pr->step - pr->m : pr->pos + pr->step;
    return cur;
}

void cascade_bloom_positions(const struct cascade_bloom_params *p, uint64_t item_id,
                             uint64_t *positions)
{
    if (p->bits == 0)
        return;
    struct bloom_probe pr = probe_start(p->bits, item_id);
    for (uint32_t i = 0; i < p->hashes; i++)
        positions[i] = probe_next(&pr);
}

static bool bitmap_get(const uint8_t *bitmap, size_t len, uint64_t bit)
{
    uint64_t byte = bit >> 3;
    if (byte >= len)
        return false;
    return (bitmap[byte] >> (7 - (bit & 7))) & 1;
}

bool cascade_bloom_test_bitmap(const struct cascade_bloom_params *p, const uint8_t *bitmap,
                               size_t len, uint64_t item_id)
{
    if (p->bits == 0 || p->hashes == 0)
        return false;
    struct bloom_probe pr = probe_start(p->bits, item_id);
    for (uint32_t i = 0; i < p->hashes; i++) {
        if (!bitmap_get(bitmap, len, probe_next(&pr)))
            return false;
    }
    return true;
}

void cascade_bloom_set_bitmap(const struct cascade_bloom_params *p, uint8_t *bitmap,
                              uint64_t item_id)
{
    if (p->bits == 0)
        return;
    struct bloom_probe pr = probe_start(p->bits, item_id);
    for (uint32_t i = 0; i < p->hashes; i++) {
        uint64_t bit = probe_next(&pr);
        bitmap[bit >> 3] |= (uint8_t)(0x80u >> (bit & 7));
    }
}
