/* Helpers shared by the RPC server and client: deadline conversion, packing
 * protobuf-c messages into gRPC byte buffers and reading them back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "clock.h"
#include "error.h"
#include "rpc.h"
#include "rpc_internal.h"

int64_t cascade__rpc_deadline_from_gpr(gpr_timespec t)
{
    if (t.tv_sec == INT64_MAX || gpr_time_cmp(t, gpr_inf_future(t.clock_type)) == 0)
        return INT64_MAX;
    /* gpr's monotonic clock has its own epoch, so work with time left. */
    gpr_timespec now = gpr_now(t.clock_type);
    gpr_timespec left = gpr_time_sub(t, now);
    int64_t left_ms = (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
    return cascade_now_ms() + left_ms;
}

gpr_timespec cascade__rpc_deadline_to_gpr(int64_t deadline_ms)
{
    if (deadline_ms == INT64_MAX)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    int64_t left = deadline_ms - cascade_now_ms();
    if (left < 0)
        left = 0;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(left, GPR_TIMESPAN));
}

grpc_byte_buffer *cascade__rpc_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

uint8_t *cascade__rpc_flatten(grpc_byte_buffer *bb, cascade_arena *arena, size_t *len)
{
    grpc_byte_buffer_reader reader;
    uint8_t *out = NULL;
    *len = 0;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    size_t n = GRPC_SLICE_LENGTH(all);
    out = cascade_arena_alloc(arena, n ? n : 1);
    if (out) {
        memcpy(out, GRPC_SLICE_START_PTR(all), n);
        *len = n;
    }
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return out;
}

const char *cascade__rpc_metadata_get(const grpc_metadata_array *md, const char *key,
                                      cascade_arena *arena)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) == klen && memcmp(GRPC_SLICE_START_PTR(*k), key, klen) == 0) {
            const grpc_slice *v = &md->metadata[i].value;
            size_t vlen = GRPC_SLICE_LENGTH(*v);
            char *out = cascade_arena_alloc(arena, vlen + 1);
            if (!out)
                return "";
            memcpy(out, GRPC_SLICE_START_PTR(*v), vlen);
            out[vlen] = '\0';
            return out;
        }
    }
    return "";
}

int cascade__rpc_token_valid(const char *token)
{
    size_t n = strlen(token);
    if (n == 0 || n > CASCADE__RPC_TOKEN_MAX)
        return CASCADE_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7e)
            return CASCADE_EINVAL;
    return 0;
}

#define PEM_MAX_BYTES ((size_t)1 << 20)

char *cascade__rpc_read_pem(const char *path, const char *what, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    buf = malloc(PEM_MAX_BYTES + 1);
    if (!buf) {
        snprintf(err, errlen, "%s %s: out of memory", what, path);
        goto out;
    }
    n = fread(buf, 1, PEM_MAX_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s %s: read error", what, path);
        goto fail;
    }
    if (n > PEM_MAX_BYTES) {
        snprintf(err, errlen, "%s %s: larger than %zu bytes", what, path, PEM_MAX_BYTES);
        goto fail;
    }
    buf[n] = '\0';
    if (strlen(buf) != n || !strstr(buf, "-----BEGIN ")) {
        snprintf(err, errlen, "%s %s: not a PEM file (no \"-----BEGIN\" line)", what, path);
        goto fail;
    }
    goto out;
fail:
    free(buf);
    buf = NULL;
out:
    fclose(f);
    return buf;
}

bool cascade_rpc_unix_path_ok(const char *path)
{
    _Static_assert(CASCADE_UNIX_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
                   "CASCADE_UNIX_PATH_MAX is sun_path's size");
    return path && path[0] == '/' && strlen(path) < CASCADE_UNIX_PATH_MAX;
}
