/* Internals shared by the RPC server and client (rpc_server.c, rpc_client.c):
 * clock conversion between our monotonic milliseconds and gpr_timespec, and
 * protobuf-c <-> grpc_byte_buffer conversion. Not part of the public API. */
#ifndef CASCADE_RPC_INTERNAL_H
#define CASCADE_RPC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"

/* gpr deadline (any clock) -> absolute cascade_now_ms deadline (INT64_MAX = none). */
int64_t cascade__rpc_deadline_from_gpr(gpr_timespec t);

/* absolute cascade_now_ms deadline -> gpr monotonic deadline. */
gpr_timespec cascade__rpc_deadline_to_gpr(int64_t deadline_ms);

/* Pack a message into a new byte buffer (caller destroys). NULL on failure. */
grpc_byte_buffer *cascade__rpc_pack(const ProtobufCMessage *msg);

/* Copy a byte buffer's bytes into the arena (contiguous). Returns NULL when the
 * arena is exhausted; *len receives the length. */
uint8_t *cascade__rpc_flatten(grpc_byte_buffer *bb, cascade_arena *arena, size_t *len);

/* Maximum bearer token length, and its check: 0 when token is 1..max
 * visible ASCII characters (what an HTTP/2 header value may carry). */
#define CASCADE__RPC_TOKEN_MAX 256
int cascade__rpc_token_valid(const char *token);

/* Find a metadata value by key; returns an arena copy or "" when absent. */
const char *cascade__rpc_metadata_get(const grpc_metadata_array *md, const char *key,
                                      cascade_arena *arena);

/* Read a whole PEM file (at most 1 MiB, must contain "-----BEGIN") into a
 * malloc'ed NUL-terminated string the caller frees. NULL with
 * "<what> <path>: <reason>" in err. */
char *cascade__rpc_read_pem(const char *path, const char *what, char *err, size_t errlen);

#endif
