/* Geohash: a cell is the interleaving of longitude and latitude bisection
 * bits (longitude first), 5 bits per base32 character. Neighbours are found
 * by turning a cell into integer column/row indices, stepping, and re-encoding. */
#include "geohash.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

static const char base32[] = "0123456789bcdefghjkmnpqrstuvwxyz";

/* Value 0..31 of a geohash character, or -1. */
static int char_value(char c)
{
    const char *p = c ? strchr(base32, c) : NULL;
    return p ? (int)(p - base32) : -1;
}

/* Bits of longitude and latitude in a cell of `precision` characters. */
static void bit_counts(int precision, int *lon_bits, int *lat_bits)
{
    int total = 5 * precision;
    *lon_bits = (total + 1) / 2;
    *lat_bits = total / 2;
}

int cascade_geohash_encode(double lat, double lon, int precision, char *out)
{
    if (precision < 1 || precision > CASCADE_GEOHASH_MAX || !(lat >= -90.0 && lat <= 90.0) ||
        !(lon >= -180.0 && lon <= 180.0))
        return CASCADE_EINVAL;
    double lat_lo = -90.0, lat_hi = 90.0, lon_lo = -180.0, lon_hi = 180.0;
    int bit = 0; /* even bits bisect longitude, odd bits latitude */
    for (int c = 0; c < precision; c++) {
        int v = 0;
        for (int b = 0; b < 5; b++, bit++) {
            double *lo = bit % 2 == 0 ? &lon_lo : &lat_lo, *hi = bit % 2 == 0 ? &lon_hi : &lat_hi;
            double x = bit % 2 == 0 ? lon : lat, mid = (*lo + *hi) / 2;
            v <<= 1;
            if (x >= mid) {
                v |= 1;
                *lo = mid;
            } else {
                *hi = mid;
            }
        }
        out[c] = base32[v];
    }
    out[precision] = '\0';
    return 0;
}

bool cascade_geohash_valid(const char *hash)
{
    if (!hash)
        return false;
    size_t n = strlen(hash);
    if (n < 1 || n > CASCADE_GEOHASH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (char_value(hash[i]) < 0)
            return false;
    return true;
}

/* A valid cell as integer indices: column x (longitude) and row y (latitude),
 * counted from the south-west corner. */
static void to_indices(const char *hash, int precision, uint64_t *x, uint64_t *y)
{
    int bit = 0;
    *x = *y = 0;
    for (int c = 0; c < precision; c++) {
        int v = char_value(hash[c]);
        for (int b = 4; b >= 0; b--, bit++) {
            uint64_t set = (uint64_t)((v >> b) & 1);
            if (bit % 2 == 0)
                *x = (*x << 1) | set;
            else
                *y = (*y << 1) | set;
        }
    }
}

/* The inverse of to_indices. */
static void from_indices(uint64_t x, uint64_t y, int precision, char *out)
{
    int lon_bits, lat_bits, bit = 0;
    bit_counts(precision, &lon_bits, &lat_bits);
    for (int c = 0; c < precision; c++) {
        int v = 0;
        for (int b = 0; b < 5; b++, bit++) {
            /* Bit number bit/2 (from the top) of x or y. */
            int from_top = bit / 2;
            uint64_t w = bit % 2 == 0 ? (x >> (lon_bits - 1 - from_top)) & 1
                                      : (y >> (lat_bits - 1 - from_top)) & 1;
            v = (v << 1) | (int)w;
        }
        out[c] = base32[v];
    }
    out[precision] = '\0';
}

int cascade_geohash_decode(const char *hash, double *lat, double *lon, double *lat_err,
                           double *lon_err)
{
    if (!cascade_geohash_valid(hash))
        return CASCADE_EINVAL;
    int precision = (int)strlen(hash), lon_bits, lat_bits;
    uint64_t x, y;
    bit_counts(precision, &lon_bits, &lat_bits);
    to_indices(hash, precision, &x, &y);
    double lon_size = 360.0 / ldexp(1.0, lon_bits), lat_size = 180.0 / ldexp(1.0, lat_bits);
    if (lat)
        *lat = -90.0 + ((double)y + 0.5) * lat_size;
    if (lon)
        *lon = -180.0 + ((double)x + 0.5) * lon_size;
    if (lat_err)
        *lat_err = lat_size / 2;
    if (lon_err)
        *lon_err = lon_size / 2;
    return 0;
}

int cascade_geohash_neighbours(const char *hash, char out[8][CASCADE_GEOHASH_MAX + 1])
{
    /* N, NE, E, SE, S, SW, W, NW as (columns east, rows north). */
    static const int step[8][2] = {{0, 1},  {1, 1},   {1, 0},  {1, -1},
                                   {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
    if (!cascade_geohash_valid(hash))
        return CASCADE_EINVAL;
    int precision = (int)strlen(hash), lon_bits, lat_bits;
    uint64_t x, y;
    bit_counts(precision, &lon_bits, &lat_bits);
    to_indices(hash, precision, &x, &y);
    uint64_t cols = (uint64_t)1 << lon_bits, rows = (uint64_t)1 << lat_bits;
    for (int d = 0; d < 8; d++) {
        int64_t ny = (int64_t)y + step[d][1];
        if (ny < 0 || ny >= (int64_t)rows) {
            out[d][0] = '\0'; /* beyond a pole */
            continue;
        }
        int64_t nx = ((int64_t)x + step[d][0] + (int64_t)cols) % (int64_t)cols; /* wraps at ±180° */
        from_indices((uint64_t)nx, (uint64_t)ny, precision, out[d]);
    }
    return 0;
}
