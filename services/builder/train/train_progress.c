/* The per-epoch progress line shared by the trainers (train_progress.h):
 * examples/s and the ETA come from the running totals so every trainer
 * reports them the same way. */
#include "train_progress.h"

#include <stdio.h>

void cascade_train_epoch_print(FILE *out, const struct cascade_train_epoch *e)
{
    double rate = e->elapsed_s > 0 ? (double)e->examples / e->elapsed_s : 0;
    double eta =
        e->epoch > 0 ? e->elapsed_s / (double)e->epoch * (double)(e->epochs - e->epoch) : 0;
    fprintf(out, "%s: epoch %zu/%zu step %zu loss %.4f%s%s; %.0f examples/s, ETA %.0f s\n", e->job,
            e->epoch, e->epochs, e->step, e->loss, e->metrics ? " " : "",
            e->metrics ? e->metrics : "", rate, eta);
}
