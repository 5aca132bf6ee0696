/* Geohash (base32, Niemeyer's scheme): encode a latitude/longitude to a cell
 * of a given precision, decode a cell to its centre, and list a cell's 8
 * neighbours. Used by the Geo recall channel (the user's cell and its
 * neighbours) and the builder (item cell lists). Pure functions, thread-safe. */
#ifndef CASCADE_GEOHASH_H
#define CASCADE_GEOHASH_H

#include <stdbool.h>
#include <stddef.h>

#define CASCADE_GEOHASH_MAX 12

/* Encode to `precision` characters (1..12) into out (precision+1 bytes).
 * Returns 0, or CASCADE_EINVAL for out-of-range coordinates or precision. */
int cascade_geohash_encode(double lat, double lon, int precision, char *out);

/* Decode a cell to its centre and half-sizes. Returns CASCADE_EINVAL for an
 * empty, too long or non-base32 string. Any of the out pointers may be NULL. */
int cascade_geohash_decode(const char *hash, double *lat, double *lon, double *lat_err,
                           double *lon_err);

/* True when hash is 1..12 valid base32 geohash characters. */
bool cascade_geohash_valid(const char *hash);

/* The 8 neighbours of a cell, in the order N, NE, E, SE, S, SW, W, NW, each
 * of the same precision (out[i] holds CASCADE_GEOHASH_MAX+1 bytes). Wraps
 * around in longitude; at the poles a missing neighbour is returned as "".
 * Returns CASCADE_EINVAL for an invalid cell. */
int cascade_geohash_neighbours(const char *hash, char out[8][CASCADE_GEOHASH_MAX + 1]);

#endif
