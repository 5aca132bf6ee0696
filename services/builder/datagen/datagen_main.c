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
    struct cascade_datagen_world_flags world;
    struct cascade_flag flags[CASCADE_DATAGEN_WORLD_FLAGS + 5] = {
        {"out", CASCADE_FLAG_STRING, &out, "output directory (created if missing); required", 0, 0},
    };
    size_t nflags = 1 + cascade_datagen_world_flags(&o, &world, flags + 1);
    flags[nflags++] = (struct cascade_flag){
        "no-truth", CASCADE_FLAG_BOOL, &no_truth, "do not write truth.tsv", 0, 0};
    flags[nflags++] = (struct cascade_flag){
        "truth-terms",
        CASCADE_FLAG_BOOL,
        &o.truth_terms,
        "truth.tsv also gets the six terms of each click logit (docs/data.md)",
        0,
        0};
    flags[nflags++] = (struct cascade_flag){
        "truth-model",
        CASCADE_FLAG_BOOL,
        &o.truth_model,
        "also write the click model's parameters: truth_users.tsv, truth_items.tsv (docs/data.md)",
        0,
        0};
    flags[nflags++] =
        (struct cascade_flag){"quiet", CASCADE_FLAG_BOOL, &o.quiet, "no progress lines", 0, 0};
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
    cascade_datagen_world_flags_apply(&world, &o);
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
