/* Output of cascade-eval: a table (one row per channel plus the merged
 * recall; recall@K, hit-rate@K, NDCG@K, coverage, time per user) for people,
 * and a JSON document with the same numbers and the run's settings for
 * machines. */
#ifndef CASCADE_EVAL_REPORT_H
#define CASCADE_EVAL_REPORT_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "eval_build.h"
#include "eval_run.h"
#include "eval_split.h"
#include "eval_tune.h"

/* Everything the report describes; all borrowed. build is NULL when the
 * build was skipped (--skip-build). */
struct cascade_eval_report {
    const char *data; /* input directory */
    const struct cascade_eval_split_opts *split_opts;
    const struct cascade_eval_split *split;
    const struct cascade_eval_build_summary *build;
    const struct cascade_eval_run_opts *run;
    const struct cascade_eval_result *result;
    size_t coverage_k; /* the K the table's coverage column uses */
    /* --tune-weights: the tuning (NULL without), its options, and the merge
     * before tuning (the "merged_base" row). */
    const struct cascade_eval_tune_result *tune;
    const struct cascade_eval_tune_opts *tune_opts;
    const struct cascade_eval_merge_channel *base;
    size_t n_base;
};

/* Print the table to out. */
void cascade_eval_report_table(FILE *out, const struct cascade_eval_report *r);

/* Write the JSON document to path ("-" = stdout). Returns 0 or CASCADE_EIO
 * with "path: reason" in err. */
int cascade_eval_report_json(const char *path, const struct cascade_eval_report *r, char *err,
                             size_t errlen);

/* Write doc (reference taken, NULL = out of memory) indented to path ("-" =
 * stdout). Returns 0, CASCADE_ENOMEM or CASCADE_EIO with the reason in err. */
int cascade_eval_json_write(const char *path, json_t *doc, char *err, size_t errlen);

#endif
