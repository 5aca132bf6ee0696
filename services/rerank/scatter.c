/* Scatter rules (打散) after MMR / DPP: at most k items of one category, and
 * of one author, in any w consecutive positions, and a minimum distance
 * between two items of one author. The repair keeps the preferred order as
 * far as the rules allow: a depth-first search over positions tries the
 * preferred items first and backtracks, so the first complete order it finds
 * is the lexicographically best valid one. Items of one (category, author)
 * class are interchangeable for the rules, so each position tries one item
 * per class: if the best item of a class leads nowhere, no other item of it
 * can. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "clock.h"
#include "error.h"
#include "rerank.h"

#define SCATTER_DEFAULT_STEPS 1000000

struct scatter {
    const struct cascade_mmr_item *items;
    const struct cascade_scatter_rules *r;
    size_t *out;     /* the order being built */
    uint32_t *cls;   /* class of each item */
    uint64_t *tried; /* per class: the visit stamp that last tried it */
    uint64_t *visit; /* per position: its current visit stamp */
    size_t *cursor;  /* per position: where in pref its scan resumes */
    bool *used;
};

int cascade_scatter_active(const struct cascade_scatter_rules *r)
{
    return r && ((r->window > 0 && (r->max_per_category > 0 || r->max_per_author > 0)) ||
                 r->author_min_distance > 1);
}

/* Rule violations of placing item x at position pos after out[0..pos):
 * the excess over each cap in the window ending at pos, plus the items of
 * x's author closer than the minimum distance. 0 = allowed. */
static size_t violations(const struct scatter *s, size_t pos, size_t x)
{
    const struct cascade_scatter_rules *r = s->r;
    const struct cascade_mmr_item *it = &s->items[x];
    size_t same_cat = 1, same_author = 1, close = 0, v = 0;
    size_t back = r->window > 0 ? r->window - 1 : 0;
    size_t reach = r->author_min_distance > 1 ? r->author_min_distance - 1 : 0;
    size_t span = back > reach ? back : reach;
    for (size_t d = 1; d <= span && d <= pos; d++) {
        const struct cascade_mmr_item *o = &s->items[s->out[pos - d]];
        bool cat = it->category != 0 && o->category == it->category;
        bool author = it->author_id != 0 && o->author_id == it->author_id;
        if (d <= back) {
            same_cat += cat;
            same_author += author;
        }
        if (d <= reach)
            close += author;
    }
    if (r->window > 0 && r->max_per_category > 0 && same_cat > r->max_per_category)
        v += same_cat - r->max_per_category;
    if (r->window > 0 && r->max_per_author > 0 && same_author > r->max_per_author)
        v += same_author - r->max_per_author;
    return v + close;
}

struct cls_key {
    uint32_t category;
    uint64_t author;
    size_t idx;
};

static int cls_cmp(const void *a, const void *b)
{
    const struct cls_key *x = a, *y = b;
    if (x->category != y->category)
        return x->category < y->category ? -1 : 1;
    if (x->author != y->author)
        return x->author < y->author ? -1 : 1;
    return 0;
}

/* Number the (category, author) classes of items[0..n) into cls. */
static int classify(struct scatter *s, size_t n, cascade_arena *arena, size_t *n_cls)
{
    struct cls_key *k = cascade_arena_calloc(arena, n, sizeof *k);
    if (!k)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        k[i] = (struct cls_key){s->items[i].category, s->items[i].author_id, i};
    qsort(k, n, sizeof *k, cls_cmp);
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cls_cmp(&k[i - 1], &k[i]) != 0)
            c++;
        s->cls[k[i].idx] = c;
    }
    *n_cls = (size_t)c + 1;
    return 0;
}

enum { SEARCH_FOUND, SEARCH_NONE, SEARCH_LATE };

/* The depth-first search: SEARCH_FOUND when it placed count items within
 * the budget, SEARCH_NONE when there is no valid order or the budget ran
 * out, SEARCH_LATE past the deadline (checked every 4096 steps). */
static int search(struct scatter *s, const size_t *pref, size_t n_pref, size_t count, size_t steps,
                  int64_t deadline_ms)
{
    size_t pos = 0;
    uint64_t stamp = 1;
    s->cursor[0] = 0;
    s->visit[0] = stamp;
    while (pos < count) {
        bool placed = false;
        for (size_t k = s->cursor[pos]; k < n_pref; k++) {
            size_t x = pref[k];
            if (s->used[x] || s->tried[s->cls[x]] == s->visit[pos])
                continue;
            if (steps-- == 0)
                return SEARCH_NONE;
            if ((steps & 4095) == 0 && cascade_now_ms() >= deadline_ms)
                return SEARCH_LATE;
            s->tried[s->cls[x]] = s->visit[pos];
            if (violations(s, pos, x) != 0)
                continue;
            s->out[pos] = x;
            s->used[x] = true;
            s->cursor[pos] = k + 1;
            placed = true;
            break;
        }
        if (placed) {
            pos++;
            if (pos < count) {
                s->cursor[pos] = 0;
                s->visit[pos] = ++stamp;
            }
            continue;
        }
        if (pos == 0)
            return SEARCH_NONE; /* no valid order */
        pos--;
        s->used[s->out[pos]] = false;
    }
    return SEARCH_FOUND;
}

/* The closest order: per position the preferred item with the fewest violations. */
static int closest(struct scatter *s, const size_t *pref, size_t n_pref, size_t count,
                   int64_t deadline_ms)
{
    for (size_t i = 0; i < n_pref; i++)
        s->used[pref[i]] = false;
    for (size_t pos = 0; pos < count; pos++) {
        size_t best = SIZE_MAX, best_v = SIZE_MAX;
        if (pos % 16 == 15 && cascade_now_ms() >= deadline_ms)
            return CASCADE_ETIMEDOUT;
        for (size_t k = 0; k < n_pref && best_v > 0; k++) {
            size_t x = pref[k];
            if (s->used[x])
                continue;
            size_t v = violations(s, pos, x);
            if (v < best_v) {
                best = x;
                best_v = v;
            }
        }
        s->out[pos] = best;
        s->used[best] = true;
    }
    return 0;
}

int cascade_rerank_scatter(const struct cascade_mmr_item *items, size_t n, const size_t *pref,
                           size_t n_pref, size_t count, const struct cascade_scatter_rules *rules,
                           cascade_arena *arena, int64_t deadline_ms, size_t *out, size_t *n_out,
                           int *satisfied)
{
    struct scatter s = {.items = items, .r = rules, .out = out};
    size_t n_cls = 0;
    *n_out = 0;
    *satisfied = 1;
    if (count > n_pref)
        count = n_pref;
    if (count == 0)
        return 0;
    s.cls = cascade_arena_calloc(arena, n, sizeof *s.cls);
    s.used = cascade_arena_calloc(arena, n, sizeof *s.used);
    s.visit = cascade_arena_calloc(arena, count, sizeof *s.visit);
    s.cursor = cascade_arena_calloc(arena, count, sizeof *s.cursor);
    if (!s.cls || !s.used || !s.visit || !s.cursor || classify(&s, n, arena, &n_cls) != 0)
        return CASCADE_ENOMEM;
    if (!(s.tried = cascade_arena_calloc(arena, n_cls, sizeof *s.tried)))
        return CASCADE_ENOMEM;
    size_t steps = rules->max_steps ? rules->max_steps : SCATTER_DEFAULT_STEPS;
    int found = search(&s, pref, n_pref, count, steps, deadline_ms);
    if (found == SEARCH_LATE)
        return CASCADE_ETIMEDOUT;
    if (found == SEARCH_NONE) {
        *satisfied = 0;
        if (closest(&s, pref, n_pref, count, deadline_ms) != 0)
            return CASCADE_ETIMEDOUT;
    }
    *n_out = count;
    return 0;
}
