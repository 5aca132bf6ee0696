/* build.itemcf / build.swing / build.usercf / build.ease config sections (see cf_config.h). */
#include "cf_config.h"

#include <stdint.h>
#include <stdio.h>

#include "ease.h"
#include "error.h"
#include "events.h"

static int config_u64(const cascade_config *c, const char *path, uint64_t *v, char *err,
                      size_t errlen)
{
    int64_t x;
    int rc = cascade_config_int(c, path, (int64_t)(*v & INT64_MAX), 0, INT64_MAX, &x, err, errlen);
    if (rc == 0)
        *v = (uint64_t)x;
    return rc;
}

/* build.itemcf.weights: {"click": 1, ...} or "click=1,...", on top of *w. */
static int config_weights(const cascade_config *c, struct cascade_behaviour_weights *w, char *err,
                          size_t errlen)
{
    const char *path = "build.itemcf.weights";
    json_t *v = cascade_config_get(c, path);
    if (!v)
        return 0;
    if (json_is_string(v)) {
        char msg[256];
        if (cascade_behaviour_weights_parse(w, json_string_value(v), msg, sizeof(msg)) == 0)
            return 0;
        snprintf(err, errlen, "%s: %s: %s", cascade_config_source(c), path, msg);
        return CASCADE_EINVAL;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "%s: %s: expected an object such as {\"click\": 1, \"like\": 2}",
                 cascade_config_source(c), path);
        return CASCADE_EINVAL;
    }
    const char *name;
    json_t *value;
    json_object_foreach(v, name, value)
    {
        char key[128];
        uint32_t type;
        double x;
        (void)value;
        if (cascade_event_type_parse(name, &type) != 0) {
            snprintf(err, errlen, "%s: %s: unknown behaviour '%s' (use " CASCADE_EV_NAMES ")",
                     cascade_config_source(c), path, name);
            return CASCADE_EINVAL;
        }
        snprintf(key, sizeof(key), "%s.%s", path, name);
        int rc = cascade_config_double(c, key, w->w[type], 0, 1000, &x, err, errlen);
        if (rc != 0)
            return rc;
        w->w[type] = (float)x;
    }
    return 0;
}

int cascade_cf_config(const cascade_config *c, struct cascade_itemcf_opts *itemcf,
                      struct cascade_swing_opts *swing, struct cascade_usercf_opts *usercf,
                      char *err, size_t errlen)
{
    int rc;
    if ((rc = config_weights(c, &itemcf->weights, err, errlen)) ||
        (rc = cascade_config_size(c, "build.itemcf.top_k", &itemcf->top_k, 1, 200, err, errlen)) ||
        (rc = cascade_config_size(c, "build.itemcf.max_items_per_user", &itemcf->max_items_per_user,
                                  0, 10000000, err, errlen)) ||
        (rc = cascade_config_double(c, "build.swing.alpha", swing->alpha, 0, 1e6, &swing->alpha,
                                    err, errlen)) ||
        (rc = cascade_config_double(c, "build.swing.alpha1", swing->alpha1, 0, 1e6, &swing->alpha1,
                                    err, errlen)) ||
        (rc = cascade_config_double(c, "build.swing.beta", swing->beta, 0, 10, &swing->beta, err,
                                    errlen)) ||
        (rc = cascade_config_size(c, "build.swing.users_per_item", &swing->max_users_per_item, 2,
                                  2000, err, errlen)) ||
        (rc = cascade_config_size(c, "build.swing.top_k", &swing->top_k, 1, 200, err, errlen)) ||
        (rc = config_u64(c, "build.swing.seed", &swing->seed, err, errlen)) ||
        (rc = cascade_config_size(c, "build.usercf.users_per_item", &usercf->max_users_per_item, 0,
                                  10000000, err, errlen)) ||
        (rc = cascade_config_size(c, "build.usercf.top_k", &usercf->top_k, 1, 100, err, errlen)) ||
        (rc = config_u64(c, "build.usercf.seed", &usercf->seed, err, errlen)))
        return rc;
    swing->weights = usercf->weights = itemcf->weights;
    swing->max_items_per_user = usercf->max_items_per_user = itemcf->max_items_per_user;
    return 0;
}

int cascade_cf_config_ease(const cascade_config *c, struct cascade_ease_lists_opts *o, char *err,
                           size_t errlen)
{
    int rc;
    if ((rc = cascade_config_double(c, "build.ease.lambda", o->lambda, 1e-6, 1e9, &o->lambda, err,
                                    errlen)) ||
        (rc = cascade_config_size(c, "build.ease.max_items", &o->max_items, 1,
                                  CASCADE_EASE_MAX_ITEMS, err, errlen)) ||
        (rc = cascade_config_size(c, "build.ease.neighbours", &o->neighbours, 1, 200, err, errlen)))
        return rc;
    return 0;
}
