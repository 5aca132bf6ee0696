/* cascade-datagen: write a seeded synthetic world as users.tsv, items.tsv,
 * events.tsv (and truth.tsv) for cascade-build. Thin wrapper over datagen.h. */
#include <stdbool.h>
#include <stdio.h>

#include "datagen.h"
#include "error.h"
#include "flags.h"

int main(int argc, char **argv)
{
    struct cascade_datagen_opts o;
    struct cascade_datagen_summary sum;
    const char *out = NULL;
    bool no_truth = false;
    char err[512];
    cascade_datagen_defaults(&o);
    uint64_t users = o.users, items = o.items, events = o.events;
    uint64_t categories = o.categories, authors = o.authors, cities = o.cities, days = o.days;
    const struct cascade_flag flags[] = {
        {"out", CASCADE_FLAG_STRING, &out, "output directory (created if missing); required", 0, 0},
        {"users", CASCADE_FLAG_U64, &users, "number of users", 1, 5e7},
        {"items", CASCADE_FLAG_U64, &items, "number of items", 1, 5e7},
        {"events", CASCADE_FLAG_U64, &events, "impressions to draw (labels come on top)", 0, 1e10},
        {"categories", CASCADE_FLAG_U64, &categories, "number of categories", 1, 1e5},
        {"authors", CASCADE_FLAG_U64, &authors, "number of authors", 1, 1e8},
        {"cities", CASCADE_FLAG_U64, &cities, "number of cities", 1, 1e5},
        {"days", CASCADE_FLAG_U64, &days, "length of the event log in days", 1, 3650},
        {"seed", CASCADE_FLAG_U64, &o.seed, "random seed (same seed, same files)", 0, 0},
        {"end-ts", CASCADE_FLAG_I64, &o.end_ts,
         "end of the log, Unix seconds (0 = today 00:00 UTC; set it for byte-identical reruns)", 0,
         0},
        {"no-truth", CASCADE_FLAG_BOOL, &no_truth, "do not write truth.tsv", 0, 0},
        {"truth-terms", CASCADE_FLAG_BOOL, &o.truth_terms,
         "truth.tsv also gets the six terms of each click logit (docs/data.md)", 0, 0},
        {"truth-model", CASCADE_FLAG_BOOL, &o.truth_model,
         "also write the click model's parameters: truth_users.tsv, truth_items.tsv "
         "(docs/data.md)",
         0, 0},
        {"quiet", CASCADE_FLAG_BOOL, &o.quiet, "no progress lines", 0, 0},
    };
    size_t nflags = sizeof(flags) / sizeof(flags[0]);
    int rc = cascade_flags_parse(argc, argv, 1, flags, nflags, err, sizeof(err));
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(stdout, "cascade-datagen --out DIR [flags]",
                            "Generate a synthetic world (users, items, an impression log with "
                            "labels) as the TSV files\ndescribed in docs/data.md.",
                            flags, nflags);
        return 0;
    }
    if (rc == 0 && !out) {
        snprintf(err, sizeof(err), "--out DIR is required");
        rc = CASCADE_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, "cascade-datagen: %s\n", err);
        return 2;
    }
    o.users = users;
    o.items = items;
    o.events = events;
    o.categories = (uint32_t)categories;
    o.authors = (uint32_t)authors;
    o.cities = (uint32_t)cities;
    o.days = (uint32_t)days;
    o.truth = !no_truth;
    rc = cascade_datagen_run(&o, out, &sum, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "cascade-datagen: %s\n", err);
        return rc == CASCADE_EINVAL ? 2 : 1;
    }
    printf("datagen: wrote %s: %zu users, %zu items, %zu events (%zu circles) in %.2fs\n", out,
           sum.users, sum.items, sum.events, sum.circles, sum.seconds);
    printf("datagen: impressions %zu, clicks %zu (CTR %.4f, mean true p_click %.4f), likes %zu, "
           "collects %zu, shares %zu, follows %zu, plays %zu, dislikes %zu\n",
           sum.by_type[CASCADE_EV_IMPRESSION], sum.by_type[CASCADE_EV_CLICK], sum.ctr,
           sum.mean_p_click, sum.by_type[CASCADE_EV_LIKE], sum.by_type[CASCADE_EV_COLLECT],
           sum.by_type[CASCADE_EV_SHARE], sum.by_type[CASCADE_EV_FOLLOW],
           sum.by_type[CASCADE_EV_PLAY], sum.by_type[CASCADE_EV_DISLIKE]);
    return 0;
}
