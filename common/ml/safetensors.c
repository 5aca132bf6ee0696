/* safetensors reader and writer (F32 only): an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then
 * raw little-endian data. Files are validated fully before anything is used. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader maps it directly"
#endif

#define ST_MAX_HEADER (100u * 1024 * 1024)
#define ST_HEADER_ALIGN 8

struct cascade_safetensors {
    uint8_t *file; /* whole file */
    size_t file_len;
    struct cascade_tensor *tensors;
    float **copies; /* aligned copies of misaligned tensors (entries may be NULL) */
    size_t n_alloc; /* length of tensors and copies */
    size_t n;       /* tensors parsed */
    char **meta_keys, **meta_values;
    size_t n_meta;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- writing ---- */

static int tensor_bytes(const struct cascade_tensor *t, uint64_t *bytes)
{
    uint64_t count = 1;
    if (t->ndim < 0 || t->ndim > CASCADE_ST_MAX_DIMS)
        return CASCADE_EINVAL;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (t->shape[d] > 0 && count > UINT64_MAX / 4 / (uint64_t)t->shape[d]))
            return CASCADE_EINVAL;
        count *= (uint64_t)t->shape[d];
    }
    *bytes = count * sizeof(float);
    return 0;
}

static int check_tensors(const char *path, const struct cascade_tensor *tensors, size_t n,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct cascade_tensor *t = &tensors[i];
        uint64_t bytes;
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
            set_err(err, errlen, "%s: tensor %zu: missing or reserved name", path, i);
            return CASCADE_EINVAL;
        }
        if (tensor_bytes(t, &bytes) != 0) {
            set_err(err, errlen, "%s: tensor \"%s\": bad shape (ndim %d)", path, t->name, t->ndim);
            return CASCADE_EINVAL;
        }
        if (bytes && !t->data) {
            set_err(err, errlen, "%s: tensor \"%s\": no data", path, t->name);
            return CASCADE_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(tensors[j].name, t->name) == 0) {
                set_err(err, errlen, "%s: tensor \"%s\" appears twice", path, t->name);
                return CASCADE_EINVAL;
            }
        }
    }
    return 0;
}

/* The JSON header text, padded with spaces to a multiple of 8 bytes so the
 * data that follows the 8-byte length starts aligned. Caller frees. */
static char *build_header(const struct cascade_tensor *tensors, size_t n,
                          const char *const *meta_keys, const char *const *meta_values,
                          size_t n_meta, size_t *len)
{
    char *text = NULL, *padded = NULL;
    json_t *root = json_object();
    if (!root)
        return NULL;
    if (n_meta) {
        json_t *meta = json_object();
        json_object_set_new(root, "__metadata__", meta);
        for (size_t i = 0; meta && i < n_meta; i++)
            json_object_set_new(meta, meta_keys[i], json_string(meta_values[i]));
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        tensor_bytes(&tensors[i], &bytes);
        json_t *shape = json_array();
        for (int d = 0; d < tensors[i].ndim; d++)
            json_array_append_new(shape, json_integer(tensors[i].shape[d]));
        json_t *desc = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape,
                                 "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes));
        if (!desc || json_object_set_new(root, tensors[i].name, desc) != 0)
            goto out;
        offset += bytes;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    size_t raw = strlen(text);
    size_t total = (raw + ST_HEADER_ALIGN - 1) / ST_HEADER_ALIGN * ST_HEADER_ALIGN;
    padded = malloc(total + 1);
    if (padded) {
        memcpy(padded, text, raw);
        memset(padded + raw, ' ', total - raw);
        padded[total] = '\0';
        *len = total;
    }
out:
    free(text);
    json_decref(root);
    return padded;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static int write_file(int fd, const char *header, size_t hlen, const struct cascade_tensor *tensors,
                      size_t n)
{
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    if (write_all(fd, lenbuf, 8) != 0 || write_all(fd, header, hlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = 0;
        tensor_bytes(&tensors[i], &bytes);
        if (bytes && write_all(fd, tensors[i].data, bytes) != 0)
            return -1;
    }
    return fsync(fd);
}

int cascade_safetensors_write(const char *path, const struct cascade_tensor *tensors, size_t n,
                              const char *const *meta_keys, const char *const *meta_values,
                              size_t n_meta, char *err, size_t errlen)
{
    int rc = check_tensors(path, tensors, n, err, errlen);
    if (rc != 0)
        return rc;
    char tmp[4096];
    bool tmp_created = false;
    int fd = -1;
    size_t hlen = 0;
    char *header = build_header(tensors, n, meta_keys, meta_values, n_meta, &hlen);
    if (!header) {
        set_err(err, errlen, "%s: cannot build the header (out of memory)", path);
        return CASCADE_ENOMEM;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        set_err(err, errlen, "%s: path too long", path);
        rc = CASCADE_EINVAL;
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    tmp_created = fd >= 0;
    if (fd < 0 || write_file(fd, header, hlen, tensors, n) != 0) {
        set_err(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        rc = CASCADE_EIO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        rc = CASCADE_EIO;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        set_err(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        rc = CASCADE_EIO;
        goto out;
    }
    sync_parent_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp_created)
        unlink(tmp);
    free(header);
    return rc;
}

/* ---- reading ---- */

static uint8_t *read_whole(const char *path, size_t *len, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (!buf) {
        set_err(err, errlen, "%s: out of memory for %lld bytes", path, (long long)st.st_size);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            set_err(err, errlen, "%s: read error: %s", path,
                    r < 0 ? strerror(errno) : "short read");
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    *len = got;
out:
    if (fd >= 0)
        close(fd);
    return buf;
}

static int parse_metadata(cascade_safetensors *st, const char *path, json_t *meta, char *err,
                          size_t errlen)
{
    if (!json_is_object(meta)) {
        set_err(err, errlen, "%s: \"__metadata__\" must be an object of strings", path);
        return CASCADE_EFORMAT;
    }
    size_t n = json_object_size(meta);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return CASCADE_ENOMEM;
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value)
    {
        if (!json_is_string(value)) {
            set_err(err, errlen, "%s: metadata \"%s\" is not a string", path, key);
            return CASCADE_EFORMAT;
        }
        st->meta_keys[st->n_meta] = strdup(key);
        st->meta_values[st->n_meta] = strdup(json_string_value(value));
        st->n_meta++;
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
            return CASCADE_ENOMEM;
    }
    return 0;
}

/* Validate one tensor description and point t at its data (copying it when
 * the file places it at an address floats cannot be read from). */
static int parse_tensor(cascade_safetensors *st, size_t idx, const char *path, const char *name,
                        json_t *desc, const uint8_t *data, size_t data_len, char *err,
                        size_t errlen)
{
    struct cascade_tensor *t = &st->tensors[idx];
    json_t *dtype = json_object_get(desc, "dtype");
    json_t *shape = json_object_get(desc, "shape");
    json_t *offs = json_object_get(desc, "data_offsets");
    if (!json_is_object(desc) || !json_is_string(dtype) || !json_is_array(shape) ||
        !json_is_array(offs) || json_array_size(offs) != 2) {
        set_err(err, errlen, "%s: tensor \"%s\": needs dtype, shape and data_offsets [begin, end]",
                path, name);
        return CASCADE_EFORMAT;
    }
    if (strcmp(json_string_value(dtype), "F32") != 0) {
        set_err(err, errlen, "%s: tensor \"%s\": unsupported dtype \"%s\" (only F32 is read)", path,
                name, json_string_value(dtype));
        return CASCADE_EFORMAT;
    }
    if (json_array_size(shape) > CASCADE_ST_MAX_DIMS) {
        set_err(err, errlen, "%s: tensor \"%s\": %zu dimensions (at most %d)", path, name,
                json_array_size(shape), CASCADE_ST_MAX_DIMS);
        return CASCADE_EFORMAT;
    }
    t->ndim = (int)json_array_size(shape);
    for (int d = 0; d < t->ndim; d++) {
        json_t *dim = json_array_get(shape, (size_t)d);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0) {
            set_err(err, errlen, "%s: tensor \"%s\": shape must hold non-negative integers", path,
                    name);
            return CASCADE_EFORMAT;
        }
        t->shape[d] = json_integer_value(dim);
    }
    json_t *jb = json_array_get(offs, 0), *je = json_array_get(offs, 1);
    json_int_t b = json_integer_value(jb), e = json_integer_value(je);
    if (!json_is_integer(jb) || !json_is_integer(je) || b < 0 || e < b || (uint64_t)e > data_len) {
        set_err(err, errlen,
                "%s: tensor \"%s\": data_offsets [%lld, %lld] outside the %zu data bytes "
                "(truncated file?)",
                path, name, (long long)b, (long long)e, data_len);
        return CASCADE_EFORMAT;
    }
    uint64_t bytes = 0;
    if (tensor_bytes(t, &bytes) != 0 || bytes != (uint64_t)(e - b)) {
        set_err(err, errlen,
                "%s: tensor \"%s\": shape needs %" PRIu64 " bytes but data_offsets span %lld", path,
                name, bytes, (long long)(e - b));
        return CASCADE_EFORMAT;
    }
    const uint8_t *src = data + b;
    if ((uintptr_t)src % _Alignof(float) != 0) {
        st->copies[idx] = malloc(bytes ? bytes : 1);
        if (!st->copies[idx])
            return CASCADE_ENOMEM;
        memcpy(st->copies[idx], src, bytes);
        t->data = st->copies[idx];
    } else {
        t->data = (const float *)(const void *)src;
    }
    return 0;
}

static int parse_header(cascade_safetensors *st, const char *path, const char *text, size_t hlen,
                        const uint8_t *data, size_t data_len, char *err, size_t errlen)
{
    json_error_t jerr;
    int rc = CASCADE_EFORMAT;
    json_t *root = json_loadb(text, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_err(err, errlen, "%s: bad JSON header at %d:%d: %s", path, jerr.line, jerr.column,
                jerr.text);
        return CASCADE_EFORMAT;
    }
    if (!json_is_object(root)) {
        set_err(err, errlen, "%s: the JSON header is not an object", path);
        goto out;
    }
    size_t n = json_object_size(root);
    st->tensors = calloc(n ? n : 1, sizeof(*st->tensors));
    st->copies = calloc(n ? n : 1, sizeof(*st->copies));
    st->n_alloc = n ? n : 1;
    if (!st->tensors || !st->copies) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "__metadata__") == 0)
            rc = parse_metadata(st, path, value, err, errlen);
        else
            rc = parse_tensor(st, st->n, path, key, value, data, data_len, err, errlen);
        if (rc != 0)
            goto out;
        if (strcmp(key, "__metadata__") != 0) {
            char *name = strdup(key);
            if (!name) {
                rc = CASCADE_ENOMEM;
                goto out;
            }
            st->tensors[st->n++].name = name;
        }
    }
    rc = 0;
out:
    if (rc == CASCADE_ENOMEM)
        set_err(err, errlen, "%s: out of memory", path);
    json_decref(root);
    return rc;
}

cascade_safetensors *cascade_safetensors_read(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    uint8_t *file = read_whole(path, &len, err, errlen);
    if (!file)
        return NULL;
    cascade_safetensors *st = calloc(1, sizeof(*st));
    if (!st) {
        set_err(err, errlen, "%s: out of memory", path);
        free(file);
        return NULL;
    }
    st->file = file;
    st->file_len = len;
    if (len < 8) {
        set_err(err, errlen,
                "%s: truncated: %zu bytes, a safetensors file starts with an 8-byte "
                "header length",
                path, len);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)file[i] << (8 * i);
    if (hlen > ST_MAX_HEADER) {
        set_err(err, errlen,
                "%s: header length %" PRIu64 " is implausible (not a safetensors "
                "file?)",
                path, hlen);
        goto fail;
    }
    if (hlen > len - 8) {
        set_err(err, errlen, "%s: truncated: header of %" PRIu64 " bytes but only %zu follow", path,
                hlen, len - 8);
        goto fail;
    }
    if (parse_header(st, path, (const char *)file + 8, (size_t)hlen, file + 8 + hlen,
                     len - 8 - (size_t)hlen, err, errlen) != 0)
        goto fail;
    return st;
fail:
    cascade_safetensors_destroy(st);
    return NULL;
}

void cascade_safetensors_destroy(cascade_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free((char *)st->tensors[i].name);
    /* A copy may exist for the entry past n when parsing failed midway. */
    for (size_t i = 0; st->copies && i < st->n_alloc; i++)
        free(st->copies[i]);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->copies);
    free(st->tensors);
    free(st->file);
    free(st);
}

const struct cascade_tensor *cascade_safetensors_find(const cascade_safetensors *st,
                                                      const char *name)
{
    for (size_t i = 0; st && i < st->n; i++) {
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    }
    return NULL;
}

const char *cascade_safetensors_meta(const cascade_safetensors *st, const char *key)
{
    for (size_t i = 0; st && i < st->n_meta; i++) {
        if (strcmp(st->meta_keys[i], key) == 0)
            return st->meta_values[i];
    }
    return NULL;
}
