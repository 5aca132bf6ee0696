/* Hand decoders for the two records the Recall hot paths read by the
 * thousand: NeighbourList (stops after the entries a channel uses, no
 * 200-entry struct to fill) and Interaction (only item id and weight). They
 * read the protobuf wire format directly: varints, fixed32 and
 * length-delimited fields; unknown fields are skipped, anything malformed is
 * CASCADE_EFORMAT. Decimal id parsing for Redis replies is here too. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "recall_internal.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return CASCADE_EFORMAT;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return CASCADE_EFORMAT;
}

/* A field key: field number >= 1 and its wire type. */
static int read_tag(const uint8_t **p, const uint8_t *end, uint32_t *field, uint32_t *wt)
{
    uint64_t tag;
    if (read_varint(p, end, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return CASCADE_EFORMAT;
    *field = (uint32_t)(tag >> 3);
    *wt = (uint32_t)(tag & 7);
    return 0;
}

/* The payload of a length-delimited field: [*start, *start + *len). */
static int read_len(const uint8_t **p, const uint8_t *end, const uint8_t **start, size_t *len)
{
    uint64_t n;
    if (read_varint(p, end, &n) != 0 || n > (uint64_t)(end - *p))
        return CASCADE_EFORMAT;
    *start = *p;
    *len = (size_t)n;
    *p += n;
    return 0;
}

static int skip_field(const uint8_t **p, const uint8_t *end, uint32_t wt)
{
    uint64_t v;
    const uint8_t *start;
    size_t len;
    switch (wt) {
    case WT_VARINT:
        return read_varint(p, end, &v);
    case WT_FIXED64:
        if (end - *p < 8)
            return CASCADE_EFORMAT;
        *p += 8;
        return 0;
    case WT_LEN:
        return read_len(p, end, &start, &len);
    case WT_FIXED32:
        if (end - *p < 4)
            return CASCADE_EFORMAT;
        *p += 4;
        return 0;
    default: /* groups (3, 4) and invalid types */
        return CASCADE_EFORMAT;
    }
}

static int read_float(const uint8_t **p, const uint8_t *end, float *out)
{
    if (end - *p < 4)
        return CASCADE_EFORMAT;
    const uint8_t *b = *p;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    memcpy(out, &u, sizeof *out);
    *p += 4;
    return 0;
}

/* One Neighbour message: item_id = 1 (varint), score = 2 (float). */
static int decode_neighbour(const uint8_t *p, const uint8_t *end, uint64_t *id, float *score)
{
    *id = 0;
    *score = 0;
    while (p < end) {
        uint32_t field, wt;
        if (read_tag(&p, end, &field, &wt) != 0)
            return CASCADE_EFORMAT;
        int rc;
        if (field == 1 && wt == WT_VARINT)
            rc = read_varint(&p, end, id);
        else if (field == 2 && wt == WT_FIXED32)
            rc = read_float(&p, end, score);
        else
            rc = skip_field(&p, end, wt);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cascade_recall_decode_neighbours(const uint8_t *buf, size_t len, size_t max, uint64_t *ids,
                                     float *scores, size_t *count)
{
    const uint8_t *p = buf, *end = buf + len;
    *count = 0;
    while (p < end && *count < max) {
        uint32_t field, wt;
        if (read_tag(&p, end, &field, &wt) != 0)
            return CASCADE_EFORMAT;
        if (field != 1 || wt != WT_LEN) {
            if (skip_field(&p, end, wt) != 0)
                return CASCADE_EFORMAT;
            continue;
        }
        const uint8_t *sub;
        size_t sublen;
        if (read_len(&p, end, &sub, &sublen) != 0 ||
            decode_neighbour(sub, sub + sublen, &ids[*count], &scores[*count]) != 0)
            return CASCADE_EFORMAT;
        (*count)++;
    }
    return 0;
}

int cascade_recall__decode_interaction(const uint8_t *buf, size_t len, uint64_t *item_id,
                                       float *weight)
{
    const uint8_t *p = buf, *end = buf + len;
    *item_id = 0;
    *weight = 0;
    while (p < end) {
        uint32_t field, wt;
        if (read_tag(&p, end, &field, &wt) != 0)
            return CASCADE_EFORMAT;
        int rc;
        if (field == 1 && wt == WT_VARINT)
            rc = read_varint(&p, end, item_id);
        else if (field == 4 && wt == WT_FIXED32)
            rc = read_float(&p, end, weight);
        else
            rc = skip_field(&p, end, wt);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cascade_recall__parse_id(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return CASCADE_EFORMAT;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return CASCADE_EFORMAT;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

double cascade_recall__parse_score(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-' ? 1 : 0;
    if (len - i == 0 || len - i > 15)
        return strtod(s, NULL);
    int64_t v = 0;
    for (size_t j = i; j < len; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (d > 9)
            return strtod(s, NULL);
        v = v * 10 + d;
    }
    return (double)(i ? -v : v);
}
