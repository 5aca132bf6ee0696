/* Model versions per experiment arm: the files the config's experiments
 * name in rank.model_version stay loaded (pinned) beside the .latest models,
 * so two versions can serve side by side (common/pinset.h keeps the set;
 * this file says how a rank model is checked, loaded and referenced). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "rank_internal.h"

static int check_name(void *ctx, const char *name, char *why, size_t len)
{
    enum cascade_rank__kind kind;
    (void)ctx;
    if (strchr(name, '/') || cascade_rank__kind_of_file(name, &kind) != 0) {
        snprintf(why, len,
                 "must be a file name in the model directory starting rank-ltr, rank-mmoe or "
                 "rank-lr");
        return CASCADE_EINVAL;
    }
    return 0;
}

static int load(void *ctx, const char *name, void **out, char *why, size_t len)
{
    enum cascade_rank__kind kind;
    struct cascade_rank__model *m = NULL;
    (void)cascade_rank__kind_of_file(name, &kind); /* checked above */
    int rc = cascade_rank__model_load(ctx, name, kind, &m, why, len);
    *out = m;
    return rc;
}

static void ref(void *ctx, void *obj)
{
    (void)ctx;
    atomic_fetch_add(&((struct cascade_rank__model *)obj)->refs, 1);
}

static void release(void *ctx, void *obj)
{
    (void)ctx;
    cascade_rank__model_release(obj);
}

static const struct cascade_pinset_ops pin_ops = {
    .what = "rank",
    .key = "rank.model_version",
    .check = check_name,
    .load = load,
    .ref = ref,
    .release = release,
};

void cascade_rank__pins_init(cascade_rank *r)
{
    cascade_pinset_init(&r->pins, &pin_ops, r, &r->model_lock, CASCADE_RANK__MAX_PINNED);
}

int cascade_rank_pin_versions(cascade_rank *r, const cascade_config *cfg, char *err, size_t errlen)
{
    return cascade_pinset_update(&r->pins, cascade_config_get(cfg, "experiments"), err, errlen);
}

void cascade_rank__pinned_release(cascade_rank *r)
{
    cascade_pinset_clear(&r->pins);
}
