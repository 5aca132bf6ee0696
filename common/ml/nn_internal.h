/* Helpers shared by the nn*.c modules and nothing else: error messages and
 * the size checks BLAS needs (its dimensions are int). */
#ifndef CASCADE_NN_INTERNAL_H
#define CASCADE_NN_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* printf into err (if err and errlen are usable). */
void cascade__nn_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct cascade_nn_param;

/* Clear one parameter's gradient (and a sparse one's touched rows). */
void cascade__nn_param_zero_grad(struct cascade_nn_param *p);

/* True when every size fits an int, as cblas dimensions must. */
static inline bool cascade__nn_blas_ok(size_t a, size_t b, size_t c)
{
    return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX;
}

#endif
