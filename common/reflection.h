/* gRPC server reflection (grpc.reflection.v1 and v1alpha) answered from a
 * FileDescriptorSet: the index of which file defines which symbol, and the
 * answer to one ServerReflectionRequest. The RPC server (rpc_server.c) serves
 * the bidirectional stream and calls cascade_reflection_answer per message;
 * this module is the protocol logic, with no gRPC in it, so unit tests drive
 * it directly.
 *
 * Thread-safety: an index is read-only after cascade_reflection_create, so
 * any number of threads may answer requests with it at once. */
#ifndef CASCADE_REFLECTION_H
#define CASCADE_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

/* The FileDescriptorSet of every .proto the services speak (protoc
 * --descriptor_set_out --include_imports, embedded at build time by
 * proto/embed.cmake). */
extern const unsigned char cascade_reflection_descriptor_set[];
extern const size_t cascade_reflection_descriptor_set_len;

typedef struct cascade_reflection cascade_reflection;

/* Index the serialized FileDescriptorSet `set` (borrowed: it must outlive the
 * index; the answers point into it) for a server exposing `services`
 * (fully-qualified names, copied; the list_services answer, in this order).
 * Returns NULL with the reason in err: a malformed set ("descriptor set: file
 * 3: truncated field"), a file whose dependency is missing from the set, or
 * out of memory. */
cascade_reflection *cascade_reflection_create(const uint8_t *set, size_t len,
                                              const char *const *services, size_t n_services,
                                              char *err, size_t errlen);

/* Free the index. NULL is a no-op. */
void cascade_reflection_destroy(cascade_reflection *r);

/* Answer one request. The response and everything in it is allocated from
 * `arena` or points into the descriptor set or the request; it is valid while
 * all three are. Lookups that fail are answered in the response itself, as
 * the protocol says (error_response with a gRPC status code: NOT_FOUND for an
 * unknown file or symbol, INVALID_ARGUMENT for a request with no question).
 * A file answer carries the file first, then every file it depends on,
 * directly or not, each once. Returns NULL only when the arena is exhausted. */
Grpc__Reflection__V1__ServerReflectionResponse *
cascade_reflection_answer(const cascade_reflection *r,
                          const Grpc__Reflection__V1__ServerReflectionRequest *req,
                          cascade_arena *arena);

/* The number of files and of indexed symbols (for tests and logs). */
size_t cascade_reflection_n_files(const cascade_reflection *r);
size_t cascade_reflection_n_symbols(const cascade_reflection *r);

#endif
