/* One progress line per training epoch, the same shape for every trainer of
 * cascade-build (train rank|mmoe|prerank|two-tower):
 *   <job>: epoch E/N step S loss L <metrics>; R examples/s, ETA T s */
#ifndef CASCADE_BUILDER_TRAIN_PROGRESS_H
#define CASCADE_BUILDER_TRAIN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

struct cascade_train_epoch {
    const char *job;      /* "train-rank", ... */
    size_t epoch, epochs; /* 1-based epoch of epochs */
    size_t step;          /* optimiser steps so far, over all epochs */
    double loss;          /* mean training loss of this epoch */
    const char *metrics;  /* e.g. "held-out AUC 0.7561 logloss 0.2931"; may be NULL */
    size_t examples;      /* training examples seen so far, over all epochs */
    double elapsed_s;     /* training time so far */
};

/* Print the line for e on out (the trainers pass stderr); examples/s and the
 * ETA (the remaining epochs at the mean pace so far) are derived from
 * examples and elapsed_s. */
void cascade_train_epoch_print(FILE *out, const struct cascade_train_epoch *e);

#endif
