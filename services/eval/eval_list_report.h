/* The served-list report of cascade-eval (--served, --peers): one row per
 * peer (popularity, ItemKNN, EASE), per waterfall stage and for the served
 * list (with exploration off beside it when measured), each with P, R,
 * nDCG and MAP at K, catalogue coverage and popularity bias; as a table and
 * as JSON. */
#ifndef CASCADE_EVAL_LIST_REPORT_H
#define CASCADE_EVAL_LIST_REPORT_H

#include <stdio.h>

#include "eval_peers.h"
#include "eval_served.h"
#include "eval_split.h"

/* Everything the report shows; all borrowed. served is NULL for --peers. */
struct cascade_eval_list_report {
    const char *data;
    const struct cascade_eval_split_opts *split_opts;
    const struct cascade_eval_split *split;
    size_t k;
    const struct cascade_eval_peers *peers;
    const struct cascade_eval_served_result *served;
    double seconds; /* wall time of the whole run */
};

void cascade_eval_list_report_table(FILE *out, const struct cascade_eval_list_report *r);

/* Write the JSON document to path ("-" = stdout); 0 or a negative code with err. */
int cascade_eval_list_report_json(const char *path, const struct cascade_eval_list_report *r,
                                  char *err, size_t errlen);

#endif
