/* Model versions per experiment arm for pre-rank: the files the config's
 * experiments name in prerank.model_version stay loaded (pinned) beside the
 * .latest model, as rank.model_version does for Rank (common/pinset.h keeps
 * the set; this file says how a pre-rank model is checked and loaded). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "prerank_internal.h"

/* The kind by the name's prefix: prerank-ltr (learned ranker) or prerank-lr. */
static int check_name(void *ctx, const char *name, char *why, size_t len)
{
    const cascade_prerank *p = ctx;
    if (strchr(name, '/') || strncmp(name, "prerank-lr", 10) != 0) {
        snprintf(why, len,
                 "must be a file name in the model directory starting prerank-lr or "
                 "prerank-ltr");
        return CASCADE_EINVAL;
    }
    if (!p->model_dir[0]) {
        snprintf(why, len, "needs a model directory (--model-dir)");
        return CASCADE_EINVAL;
    }
    return 0;
}

static int load(void *ctx, const char *name, void **out, char *why, size_t len)
{
    struct cascade_prerank__model *m = NULL;
    bool ltr = strncmp(name, "prerank-ltr", 11) == 0;
    int rc = cascade_prerank__model_load(ctx, name, ltr, &m, why, len);
    *out = m;
    return rc;
}

static void ref(void *ctx, void *obj)
{
    (void)ctx;
    atomic_fetch_add(&((struct cascade_prerank__model *)obj)->refs, 1);
}

static void release(void *ctx, void *obj)
{
    (void)ctx;
    cascade_prerank__model_release(obj);
}

static const struct cascade_pinset_ops pin_ops = {
    .what = "prerank",
    .key = "prerank.model_version",
    .check = check_name,
    .load = load,
    .ref = ref,
    .release = release,
};

void cascade_prerank__pins_init(cascade_prerank *p)
{
    cascade_pinset_init(&p->pins, &pin_ops, p, &p->model_lock, CASCADE_PRERANK__MAX_PINNED);
}

int cascade_prerank_pin_versions(cascade_prerank *p, const cascade_config *cfg, char *err,
                                 size_t errlen)
{
    return cascade_pinset_update(&p->pins, cascade_config_get(cfg, "experiments"), err, errlen);
}

void cascade_prerank__pinned_release(cascade_prerank *p)
{
    cascade_pinset_clear(&p->pins);
}
