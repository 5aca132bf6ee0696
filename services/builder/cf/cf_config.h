/* Configuration of the collaborative-filtering builders from the "build"
 * section of a JSON config (common/config.h): build.itemcf.*, build.swing.*
 * build.usercf.* and build.ease.*. Values found there replace the options' defaults;
 * command-line flags are applied afterwards and win. Keys: docs/data.md. */
#ifndef CASCADE_BUILDER_CF_CONFIG_H
#define CASCADE_BUILDER_CF_CONFIG_H

#include <stddef.h>

#include "config.h"
#include "ease_lists.h"
#include "itemcf.h"
#include "swing.h"
#include "usercf.h"

/* Read build.itemcf.{weights,top_k,max_items_per_user},
 * build.swing.{alpha,alpha1,beta,users_per_item,top_k,seed} and
 * build.usercf.{users_per_item,top_k,seed} into the options (absent keys
 * leave them unchanged). build.itemcf.weights, an object such as
 * {"click": 1, "like": 2} or a string "click=1,like=2", also decides which
 * behaviours count as interactions for Swing and UserCF (weight > 0).
 * Returns 0 or CASCADE_EINVAL with "file:line:col: path: expected ..." in err. */
int cascade_cf_config(const cascade_config *c, struct cascade_itemcf_opts *itemcf,
                      struct cascade_swing_opts *swing, struct cascade_usercf_opts *usercf,
                      char *err, size_t errlen);

/* Read build.ease.{lambda,max_items,neighbours} into o (absent keys leave
 * it unchanged). The interaction definition is ItemCF's: callers copy the
 * itemcf weights into o->weights. Returns 0 or CASCADE_EINVAL with
 * "file:line:col: path: expected ..." in err. */
int cascade_cf_config_ease(const cascade_config *c, struct cascade_ease_lists_opts *o, char *err,
                           size_t errlen);

#endif
