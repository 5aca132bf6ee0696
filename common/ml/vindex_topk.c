/* The bounded top-k heap of the vector index: a min-heap on (score, id) whose
 * root is the worst pair kept, so a candidate costs one comparison unless it
 * beats the root. Ties on score go to the lower id, which keeps the exact scan
 * and the IVF search deterministic and comparable. */
#include <math.h>

#include "vindex_internal.h"

/* True when (sa, ia) ranks below (sb, ib). */
static inline bool worse(float sa, uint64_t ia, float sb, uint64_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

static void swap_slots(struct cascade_vindex__topk *h, size_t a, size_t b)
{
    float s = h->scores[a];
    uint64_t id = h->ids[a];
    h->scores[a] = h->scores[b];
    h->ids[a] = h->ids[b];
    h->scores[b] = s;
    h->ids[b] = id;
}

/* Put (score, id) at slot i of the heap h[0..len) and restore the heap below
 * it: the worse child moves up into the hole until the pair is no worse
 * than it, so each level costs one move instead of a swap. */
static void sift_down(struct cascade_vindex__topk *h, size_t i, size_t len, float score,
                      uint64_t id)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= len)
            break;
        if (r < len && worse(h->scores[r], h->ids[r], h->scores[l], h->ids[l]))
            m = r;
        if (!worse(h->scores[m], h->ids[m], score, id))
            break;
        h->scores[i] = h->scores[m];
        h->ids[i] = h->ids[m];
        i = m;
    }
    h->scores[i] = score;
    h->ids[i] = id;
}

static void sift_up(struct cascade_vindex__topk *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(h->scores[i], h->ids[i], h->scores[p], h->ids[p]))
            return;
        swap_slots(h, i, p);
        i = p;
    }
}

void cascade_vindex__topk_init(struct cascade_vindex__topk *h, float *scores, uint64_t *ids,
                               size_t k)
{
    h->scores = scores;
    h->ids = ids;
    h->k = k;
    h->len = 0;
}

void cascade_vindex__topk_push(struct cascade_vindex__topk *h, const float *scores,
                               const uint64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h->len < h->k) {
            h->scores[h->len] = scores[i];
            h->ids[h->len] = ids[i];
            sift_up(h, h->len++);
        } else if (worse(h->scores[0], h->ids[0], scores[i], ids[i])) {
            sift_down(h, 0, h->len, scores[i], ids[i]);
        }
    }
}

void cascade_vindex__topk_finish(struct cascade_vindex__topk *h)
{
    /* Heapsort: moving the worst to the end each round leaves the best first. */
    for (size_t end = h->len; end > 1; end--) {
        swap_slots(h, 0, end - 1);
        sift_down(h, 0, end - 1, h->scores[0], h->ids[0]);
    }
    for (size_t i = h->len; i < h->k; i++) {
        h->scores[i] = -INFINITY;
        h->ids[i] = CASCADE_VINDEX_NO_ID;
    }
    h->len = 0;
}
