/* Request-scoped bump allocator: a chain of blocks, allocations 16-byte
 * aligned, an optional cap on the bytes handed out, and a protobuf-c
 * allocator view so unpacked messages live in the arena too. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK (64 * 1024)

struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    /* Keeps data 16-byte aligned whatever the header size. */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cascade_arena {
    struct arena_block *head;  /* current block; older blocks follow */
    struct arena_block *spare; /* kept by resets, reused before malloc */
    size_t spare_bytes;
    size_t block_size;
    size_t limit; /* 0 = none */
    size_t used;  /* bytes handed out (after alignment) */
    ProtobufCAllocator pb;
};

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *pb_alloc(void *data, size_t size)
{
    return cascade_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released with the arena */
}

cascade_arena *cascade_arena_create(size_t block_size)
{
    cascade_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->block_size = align_up(block_size ? block_size : ARENA_DEFAULT_BLOCK);
    a->head = block_new(a->block_size);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

static void blocks_free(struct arena_block *b)
{
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void cascade_arena_destroy(cascade_arena *a)
{
    if (!a)
        return;
    blocks_free(a->head);
    blocks_free(a->spare);
    free(a);
}

void cascade_arena_reset(cascade_arena *a)
{
    if (!a)
        return;
    /* Keep the oldest block (the one made at creation, of block_size). */
    struct arena_block *first = a->head;
    while (first->next)
        first = first->next;
    struct arena_block *b = a->head;
    while (b != first) {
        struct arena_block *next = b->next;
        if (a->spare_bytes + b->size <= CASCADE_ARENA_RETAIN_BYTES) {
            b->used = 0;
            b->next = a->spare;
            a->spare = b;
            a->spare_bytes += b->size;
        } else {
            free(b);
        }
        b = next;
    }
    first->used = 0;
    a->head = first;
    a->used = 0;
}

/* A kept block with room for need bytes (first fit), unlinked; NULL if none. */
static struct arena_block *spare_take(cascade_arena *a, size_t need)
{
    for (struct arena_block **p = &a->spare; *p; p = &(*p)->next) {
        struct arena_block *b = *p;
        if (b->size >= need) {
            *p = b->next;
            a->spare_bytes -= b->size;
            b->next = NULL;
            return b;
        }
    }
    return NULL;
}

size_t cascade_arena_retained(const cascade_arena *a)
{
    return a ? a->spare_bytes : 0;
}

void *cascade_arena_alloc(cascade_arena *a, size_t n)
{
    if (!a || n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t need = align_up(n ? n : 1);
    if (a->limit && (need > a->limit || a->used > a->limit - need))
        return NULL;
    struct arena_block *b = a->head;
    if (b->size - b->used < need) {
        /* Oversized requests get a block of their own; the new block goes in
         * front so the next small allocations use its remaining space. */
        size_t size = need > a->block_size ? need : a->block_size;
        struct arena_block *nb = spare_take(a, need);
        if (!nb && !(nb = block_new(size)))
            return NULL;
        nb->next = a->head;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *cascade_arena_calloc(cascade_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = cascade_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *cascade_arena_strdup(cascade_arena *a, const char *s)
{
    size_t len = strlen(s);
    char *p = cascade_arena_alloc(a, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

char *cascade_arena_printf(cascade_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *p = cascade_arena_alloc(a, (size_t)len + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}

void cascade_arena_set_limit(cascade_arena *a, size_t max_bytes)
{
    if (a)
        a->limit = max_bytes;
}

size_t cascade_arena_used(const cascade_arena *a)
{
    return a ? a->used : 0;
}

ProtobufCAllocator *cascade_arena_protobuf_allocator(cascade_arena *a)
{
    return a ? &a->pb : NULL;
}
