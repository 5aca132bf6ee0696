/* Top-k by a min-heap of the k best seen so far, then a sort of those k. */
#include "topk.h"

#include <stdbool.h>
#include <stdlib.h>

/* "a ranks below b": lower score, or the same score and a larger id. */
static bool worse(const struct cascade_scored *a, const struct cascade_scored *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

static void swap(struct cascade_scored *a, struct cascade_scored *b)
{
    struct cascade_scored t = *a;
    *a = *b;
    *b = t;
}

/* Restore the min-heap (root = weakest) below position i of h[0..n). */
static void sift_down(struct cascade_scored *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        swap(&h[i], &h[m]);
        i = m;
    }
}

static int cmp_best_first(const void *a, const void *b)
{
    const struct cascade_scored *x = a, *y = b;
    return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

size_t cascade_topk_select(struct cascade_scored *v, size_t n, size_t k)
{
    if (k < n) {
        /* Heapify the first k, then let each later entry replace the weakest. */
        for (size_t i = k / 2; i-- > 0;)
            sift_down(v, k, i);
        for (size_t i = k; i < n; i++) {
            if (k > 0 && worse(&v[0], &v[i])) {
                swap(&v[0], &v[i]);
                sift_down(v, k, 0);
            }
        }
        n = k;
    }
    qsort(v, n, sizeof(*v), cmp_best_first);
    return n;
}
