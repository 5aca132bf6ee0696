/* Unit tests for common/geohash: published encodings, decode round trips
 * within the cell, the neighbours of a hand-checked cell, wrap-around at the
 * antimeridian and the poles, and rejection of invalid input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "geohash.h"

static void test_known_encodings(void **state)
{
    (void)state;
    char out[CASCADE_GEOHASH_MAX + 1];
    /* Examples from Niemeyer's geohash.org / the Wikipedia article. */
    assert_int_equal(cascade_geohash_encode(57.64911, 10.40744, 11, out), 0);
    assert_string_equal(out, "u4pruydqqvj");
    assert_int_equal(cascade_geohash_encode(42.6, -5.6, 5, out), 0);
    assert_string_equal(out, "ezs42");
    /* Shorter precision is a prefix of the longer one. */
    assert_int_equal(cascade_geohash_encode(57.64911, 10.40744, 3, out), 0);
    assert_string_equal(out, "u4p");
    /* Corners of the world: the boundaries belong to the upper cell. */
    assert_int_equal(cascade_geohash_encode(-90, -180, 2, out), 0);
    assert_string_equal(out, "00");
    assert_int_equal(cascade_geohash_encode(90, 180, 2, out), 0);
    assert_string_equal(out, "zz");
    assert_int_equal(cascade_geohash_encode(0, 0, 1, out), 0);
    assert_string_equal(out, "s");
}

static void test_decode(void **state)
{
    (void)state;
    double lat, lon, lat_err, lon_err;
    assert_int_equal(cascade_geohash_decode("ezs42", &lat, &lon, &lat_err, &lon_err), 0);
    /* 25 bits: 13 of longitude (cell 360/2^13 wide), 12 of latitude (180/2^12 high). */
    assert_true(fabs(lat - 42.60498046875) < 1e-12);
    assert_true(fabs(lon - -5.60302734375) < 1e-12);
    assert_true(fabs(lat_err - 180.0 / 4096 / 2) < 1e-12);
    assert_true(fabs(lon_err - 360.0 / 8192 / 2) < 1e-12);
    /* NULL outputs are allowed. */
    assert_int_equal(cascade_geohash_decode("ezs42", NULL, &lon, NULL, NULL), 0);
    assert_true(fabs(lon - -5.60302734375) < 1e-12);
}

static void test_round_trip(void **state)
{
    (void)state;
    const double points[][2] = {{57.64911, 10.40744}, {-33.8688, 151.2093}, {39.9042, 116.4074},
                                {0.0001, -0.0001},    {-89.9, 179.99},      {89.99, -179.99},
                                {22.5, 113.9}};
    char h[CASCADE_GEOHASH_MAX + 1], again[CASCADE_GEOHASH_MAX + 1];
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        for (int p = 1; p <= CASCADE_GEOHASH_MAX; p++) {
            double lat, lon, lat_err, lon_err;
            assert_int_equal(cascade_geohash_encode(points[i][0], points[i][1], p, h), 0);
            assert_int_equal((int)strlen(h), p);
            assert_true(cascade_geohash_valid(h));
            assert_int_equal(cascade_geohash_decode(h, &lat, &lon, &lat_err, &lon_err), 0);
            /* The point lies in the decoded cell, and the centre encodes to the same cell. */
            assert_true(fabs(points[i][0] - lat) <= lat_err);
            assert_true(fabs(points[i][1] - lon) <= lon_err);
            assert_int_equal(cascade_geohash_encode(lat, lon, p, again), 0);
            assert_string_equal(again, h);
        }
    }
}

static void assert_neighbours(const char *cell, const char *const expect[8])
{
    char out[8][CASCADE_GEOHASH_MAX + 1];
    assert_int_equal(cascade_geohash_neighbours(cell, out), 0);
    for (int d = 0; d < 8; d++)
        assert_string_equal(out[d], expect[d]);
}

static void test_neighbours(void **state)
{
    (void)state;
    /* Order N, NE, E, SE, S, SW, W, NW. */
    const char *const gbsuv[8] = {"gbsvj", "gbsvn", "gbsuy", "gbsuw",
                                  "gbsut", "gbsus", "gbsuu", "gbsvh"};
    assert_neighbours("gbsuv", gbsuv);
    const char *const u4pruyd[8] = {"u4pruyf", "u4pruyg", "u4pruye", "u4pruy7",
                                    "u4pruy6", "u4pruy3", "u4pruy9", "u4pruyc"};
    assert_neighbours("u4pruyd", u4pruyd);
    /* Every neighbour's centre is one cell away from the cell's centre. */
    char out[8][CASCADE_GEOHASH_MAX + 1];
    double lat, lon, le, oe;
    assert_int_equal(cascade_geohash_decode("wx4g0", &lat, &lon, &le, &oe), 0);
    assert_int_equal(cascade_geohash_neighbours("wx4g0", out), 0);
    const int step[8][2] = {{0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
    for (int d = 0; d < 8; d++) {
        double nlat, nlon;
        assert_int_equal(cascade_geohash_decode(out[d], &nlat, &nlon, NULL, NULL), 0);
        assert_true(fabs(nlat - (lat + 2 * le * step[d][1])) < 1e-9);
        assert_true(fabs(nlon - (lon + 2 * oe * step[d][0])) < 1e-9);
    }
}

static void test_neighbours_wrap_and_poles(void **state)
{
    (void)state;
    /* Cell "0" is the south-west corner of the world at precision 1: its west
     * neighbours wrap to the far east ("p", "r"), nothing lies south of it. */
    const char *const zero[8] = {"2", "3", "1", "", "", "", "p", "r"};
    assert_neighbours("0", zero);
    /* The north-east corner cell: nothing north, east wraps to the far west. */
    const char *const corner[8] = {"", "", "bpbpb", "bpbp8", "zzzzx", "zzzzw", "zzzzy", ""};
    assert_neighbours("zzzzz", corner);
    /* Across the antimeridian at 10°N: the east neighbour of the cell at
     * 179.99°E is the cell at 179.99°W, and vice versa. */
    char east[CASCADE_GEOHASH_MAX + 1], west[CASCADE_GEOHASH_MAX + 1];
    char out[8][CASCADE_GEOHASH_MAX + 1];
    assert_int_equal(cascade_geohash_encode(10.0, 179.99, 5, east), 0);
    assert_int_equal(cascade_geohash_encode(10.0, -179.99, 5, west), 0);
    assert_string_equal(east, "xczbz");
    assert_string_equal(west, "81b0b");
    assert_int_equal(cascade_geohash_neighbours(east, out), 0);
    assert_string_equal(out[2], west);
    assert_string_equal(out[1], "81b10");
    assert_int_equal(cascade_geohash_neighbours(west, out), 0);
    assert_string_equal(out[6], east);
}

static void test_invalid_input(void **state)
{
    (void)state;
    char out[CASCADE_GEOHASH_MAX + 1];
    char nb[8][CASCADE_GEOHASH_MAX + 1];
    assert_int_equal(cascade_geohash_encode(90.01, 0, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(-90.01, 0, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(0, 180.01, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(0, -180.01, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(NAN, 0, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(0, NAN, 5, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(0, 0, 0, out), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_encode(0, 0, 13, out), CASCADE_EINVAL);

    assert_false(cascade_geohash_valid(NULL));
    assert_false(cascade_geohash_valid(""));
    assert_false(cascade_geohash_valid("ezs4a")); /* a, i, l, o are not base32 */
    assert_false(cascade_geohash_valid("EZS42")); /* lower case only */
    assert_false(cascade_geohash_valid("ezs42 "));
    assert_false(cascade_geohash_valid("0123456789bcd")); /* 13 characters */
    assert_true(cascade_geohash_valid("0123456789bc"));

    double lat = 1;
    assert_int_equal(cascade_geohash_decode("", &lat, NULL, NULL, NULL), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_decode("wx4gi", &lat, NULL, NULL, NULL), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_decode(NULL, &lat, NULL, NULL, NULL), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_neighbours("abc", nb), CASCADE_EINVAL);
    assert_int_equal(cascade_geohash_neighbours("", nb), CASCADE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_encodings),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_neighbours),
        cmocka_unit_test(test_neighbours_wrap_and_poles),
        cmocka_unit_test(test_invalid_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
