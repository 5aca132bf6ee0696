/* Request-scoped bump allocator: everything a request allocates (decoded
 * protobuf-c messages, scratch arrays, the response) comes from one arena and
 * is released at once when the request ends. Not thread-safe: one arena per
 * request/thread. */
#ifndef CASCADE_ARENA_H
#define CASCADE_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct cascade_arena cascade_arena;

/* Create an arena whose blocks are at least block_size bytes (0 = 64 KiB).
 * Returns NULL on allocation failure. Free with cascade_arena_destroy. */
cascade_arena *cascade_arena_create(size_t block_size);

/* Free the arena and everything allocated from it. NULL is a no-op. */
void cascade_arena_destroy(cascade_arena *a);

/* Release all allocations. The first block and up to
 * CASCADE_ARENA_RETAIN_BYTES of the others are kept for the next requests,
 * so a worker that serves similar requests stops calling malloc (and
 * faulting in fresh pages) after the first few. */
void cascade_arena_reset(cascade_arena *a);

#define CASCADE_ARENA_RETAIN_BYTES (16u * 1024 * 1024)

/* Bytes of blocks kept by resets for reuse (beyond the first block). */
size_t cascade_arena_retained(const cascade_arena *a);

/* Allocate n bytes aligned to 16; NULL when out of memory or over the arena's
 * limit. Memory is owned by the arena. */
void *cascade_arena_alloc(cascade_arena *a, size_t n);

/* Zeroed allocation of count*size bytes (overflow-checked). */
void *cascade_arena_calloc(cascade_arena *a, size_t count, size_t size);

/* Copy a NUL-terminated string into the arena. */
char *cascade_arena_strdup(cascade_arena *a, const char *s);

/* printf into arena memory. */
char *cascade_arena_printf(cascade_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Cap the total bytes the arena may hand out (0 = no cap); allocations past it
 * fail, which a handler reports as RESOURCE_EXHAUSTED. */
void cascade_arena_set_limit(cascade_arena *a, size_t max_bytes);

/* Total bytes handed out since creation or the last reset. */
size_t cascade_arena_used(const cascade_arena *a);

/* A protobuf-c allocator backed by the arena (free is a no-op). The returned
 * struct is owned by the arena. */
ProtobufCAllocator *cascade_arena_protobuf_allocator(cascade_arena *a);

#endif
