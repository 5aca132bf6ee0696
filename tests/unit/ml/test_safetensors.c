/* Unit tests for common/ml/safetensors.c: round trip, the on-disk layout other
 * readers (PyTorch/NumPy) expect, atomic replacement, and rejection of
 * truncated or malformed files with a "path: reason" message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "safetensors.h"
#include "support.h"

struct fixture {
    char dir[256];
    char path[512];
};

static int setup(void **state)
{
    static struct fixture f;
    if (!test_tempdir(f.dir, sizeof(f.dir)))
        return -1;
    snprintf(f.path, sizeof(f.path), "%s/model.safetensors", f.dir);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    test_rmdir(f->dir);
    return 0;
}

static const float weights[6] = {0.5f, -1.25f, 3.0f, 0.0f, 1e-3f, 42.0f};
static const float bias[3] = {0.1f, 0.2f, 0.3f};

static int write_model(const char *path, char *err, size_t errlen)
{
    struct cascade_tensor t[2] = {
        {.name = "dense.weight", .ndim = 2, .shape = {2, 3}, .data = weights},
        {.name = "dense.bias", .ndim = 1, .shape = {3}, .data = bias},
    };
    const char *keys[] = {"format", "version"};
    const char *values[] = {"pt", "7"};
    return cascade_safetensors_write(path, t, 2, keys, values, 2, err, errlen);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_int_equal(write_model(f->path, err, sizeof(err)), 0);
    cascade_safetensors *st = cascade_safetensors_read(f->path, err, sizeof(err));
    assert_non_null(st);
    const struct cascade_tensor *w = cascade_safetensors_find(st, "dense.weight");
    assert_non_null(w);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 3);
    assert_memory_equal(w->data, weights, sizeof(weights));
    const struct cascade_tensor *b = cascade_safetensors_find(st, "dense.bias");
    assert_non_null(b);
    assert_memory_equal(b->data, bias, sizeof(bias));
    assert_null(cascade_safetensors_find(st, "missing"));
    assert_string_equal(cascade_safetensors_meta(st, "version"), "7");
    assert_null(cascade_safetensors_meta(st, "nope"));
    cascade_safetensors_destroy(st);
    cascade_safetensors_destroy(NULL);
    /* The temporary file was renamed away. */
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* The layout readers in other languages rely on: u64 LE header length, JSON
 * header (padded to 8 bytes with spaces), then the raw LE floats in order. */
static void test_layout(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(write_model(f->path, err, sizeof(err)), 0);
    size_t len;
    uint8_t *buf = slurp(f->path, &len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(len, 8 + hlen + sizeof(weights) + sizeof(bias));
    assert_int_equal(buf[8], '{');
    char *header = strndup((const char *)buf + 8, hlen);
    assert_non_null(strstr(header, "\"dense.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                                   "\"data_offsets\":[0,24]}"));
    assert_non_null(strstr(header, "\"dense.bias\":{\"dtype\":\"F32\",\"shape\":[3],"
                                   "\"data_offsets\":[24,36]}"));
    assert_non_null(strstr(header, "\"__metadata__\":{\"format\":\"pt\",\"version\":\"7\"}"));
    free(header);
    /* 0.5f little-endian is 00 00 00 3f. */
    const uint8_t half[] = {0x00, 0x00, 0x00, 0x3f};
    assert_memory_equal(buf + 8 + hlen, half, 4);
    assert_memory_equal(buf + 8 + hlen + 24, bias, sizeof(bias));
    free(buf);
}

/* Build a file by hand: header text as given (no padding), then data bytes. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t hlen = strlen(header);
    size_t len = 8 + hlen + data_len;
    uint8_t *buf = malloc(len);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (data_len)
        memcpy(buf + 8 + hlen, data, data_len);
    spit(path, buf, len);
    free(buf);
}

static void expect_reject(const char *path, const char *reason)
{
    char err[512] = "";
    assert_null(cascade_safetensors_read(path, err, sizeof(err)));
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s: ", path);
    assert_memory_equal(err, prefix, strlen(prefix)); /* "path: reason" */
    if (!strstr(err, reason))
        fail_msg("expected \"%s\" in \"%s\"", reason, err);
}

static void test_truncated(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(write_model(f->path, err, sizeof(err)), 0);
    size_t len;
    uint8_t *buf = slurp(f->path, &len);
    spit(f->path, buf, len - 4); /* last float cut off */
    expect_reject(f->path, "truncated");
    spit(f->path, buf, 20); /* inside the header */
    expect_reject(f->path, "truncated");
    spit(f->path, buf, 5); /* not even the length */
    expect_reject(f->path, "truncated");
    free(buf);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/none.safetensors", f->dir);
    expect_reject(missing, "No such file");
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;
    const float data[4] = {1, 2, 3, 4};
    write_raw(f->path, "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data, 8);
    expect_reject(f->path, "unsupported dtype \"F16\"");
    write_raw(f->path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]", data, 16);
    expect_reject(f->path, "bad JSON header");
    write_raw(f->path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", data,
              16);
    expect_reject(f->path, "outside the 16 data bytes");
    write_raw(f->path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", data,
              16);
    expect_reject(f->path, "shape needs 12 bytes but data_offsets span 16");
    write_raw(f->path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,16]}}", data,
              16);
    expect_reject(f->path, "non-negative");
    write_raw(f->path, "{\"x\":{\"shape\":[4],\"data_offsets\":[0,16]}}", data, 16);
    expect_reject(f->path, "needs dtype, shape and data_offsets");
    write_raw(f->path, "{\"__metadata__\":{\"v\":1}}", NULL, 0);
    expect_reject(f->path, "metadata \"v\" is not a string");
    uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    spit(f->path, huge, sizeof(huge));
    expect_reject(f->path, "implausible");
}

/* A header whose length leaves the data misaligned (other writers need not
 * pad) still reads correctly. */
static void test_unpadded_header(void **state)
{
    struct fixture *f = *state;
    const float data[2] = {1.5f, -2.5f};
    write_raw(f->path, "{\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    char err[256];
    cascade_safetensors *st = cascade_safetensors_read(f->path, err, sizeof(err));
    assert_non_null(st);
    const struct cascade_tensor *v = cascade_safetensors_find(st, "v");
    assert_int_equal((uintptr_t)v->data % sizeof(float), 0);
    assert_true(v->data[0] == 1.5f && v->data[1] == -2.5f);
    cascade_safetensors_destroy(st);
}

static void test_write_rejects_bad_input(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct cascade_tensor dup[2] = {
        {.name = "a", .ndim = 1, .shape = {1}, .data = bias},
        {.name = "a", .ndim = 1, .shape = {1}, .data = bias},
    };
    assert_int_equal(cascade_safetensors_write(f->path, dup, 2, NULL, NULL, 0, err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "appears twice"));
    struct cascade_tensor deep = {.name = "d", .ndim = 5, .data = bias};
    assert_int_equal(cascade_safetensors_write(f->path, &deep, 1, NULL, NULL, 0, err, sizeof(err)),
                     CASCADE_EINVAL);
    char bad_path[600];
    snprintf(bad_path, sizeof(bad_path), "%s/no/such/dir/m.safetensors", f->dir);
    assert_int_equal(write_model(bad_path, err, sizeof(err)), CASCADE_EIO);
    assert_non_null(strstr(err, "cannot write"));
}

static void test_overwrite_replaces(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(write_model(f->path, err, sizeof(err)), 0);
    const float one[1] = {9.0f};
    struct cascade_tensor t = {.name = "only", .ndim = 0, .data = one}; /* a scalar */
    assert_int_equal(cascade_safetensors_write(f->path, &t, 1, NULL, NULL, 0, err, sizeof(err)), 0);
    cascade_safetensors *st = cascade_safetensors_read(f->path, err, sizeof(err));
    assert_non_null(st);
    assert_null(cascade_safetensors_find(st, "dense.weight"));
    const struct cascade_tensor *s = cascade_safetensors_find(st, "only");
    assert_int_equal(s->ndim, 0);
    assert_true(s->data[0] == 9.0f);
    cascade_safetensors_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),          cmocka_unit_test(test_layout),
        cmocka_unit_test(test_truncated),          cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unpadded_header),    cmocka_unit_test(test_write_rejects_bad_input),
        cmocka_unit_test(test_overwrite_replaces),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
