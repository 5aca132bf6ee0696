/* Decimal text of unsigned integers without the printf machinery: ids go into
 * Redis keys and command arguments by the thousand per request (the HMGET of
 * the online counters, MGET keys, neighbour-list keys, RESP lengths), where
 * snprintf's format parsing cost more than the rest of the request's work. */
#ifndef CASCADE_DECIMAL_H
#define CASCADE_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Room for the digits of any uint64 and a NUL. */
#define CASCADE_DECIMAL_U64_MAX 21

/* Write v in decimal (no sign, no leading zeros; "0" for 0) and a NUL into
 * buf, which has room for CASCADE_DECIMAL_U64_MAX bytes. Returns the number
 * of digits: the same text as snprintf(buf, 21, "%" PRIu64, v). */
size_t cascade_decimal_u64(char *buf, uint64_t v);

#endif
