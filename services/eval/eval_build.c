/* The evaluation's build step (eval_build.h): the builder's jobs run one
 * after the other on the train dataset, configured like cascade-build would
 * be from the same config file, timed one by one; then, when asked, the
 * two-tower model is trained on that train dataset. */
#include "eval_build.h"

#include <stdio.h>
#include <string.h>

#include "authors.h"
#include "cf_config.h"
#include "cf_publish.h"
#include "clock.h"
#include "ease_lists.h"
#include "error.h"
#include "itemcf.h"
#include "lists.h"
#include "load.h"
#include "swing.h"
#include "usercf.h"

/* Every job's options, defaults then the config's build section. */
struct build_jobs {
    struct cascade_load_opts load;
    struct cascade_lists_opts lists;
    struct cascade_authors_opts authors;
    struct cascade_itemcf_opts itemcf;
    struct cascade_swing_opts swing;
    struct cascade_usercf_opts usercf;
    struct cascade_ease_lists_opts ease;
};

static int jobs_configure(const struct cascade_eval_build_opts *o, int64_t as_of,
                          struct build_jobs *j, char *err, size_t errlen)
{
    int rc;
    cascade_load_defaults(&j->load);
    cascade_lists_defaults(&j->lists);
    cascade_authors_defaults(&j->authors);
    cascade_itemcf_defaults(&j->itemcf);
    cascade_swing_defaults(&j->swing);
    cascade_usercf_defaults(&j->usercf);
    cascade_ease_lists_defaults(&j->ease);
    if (o->cfg &&
        ((rc = cascade_lists_config(o->cfg, &j->lists, err, errlen)) != 0 ||
         (rc = cascade_authors_config(o->cfg, &j->authors, err, errlen)) != 0 ||
         (rc = cascade_cf_config(o->cfg, &j->itemcf, &j->swing, &j->usercf, err, errlen)) != 0 ||
         (rc = cascade_cf_config_ease(o->cfg, &j->ease, err, errlen)) != 0))
        return rc;
    int threads = o->threads > 0 ? o->threads : 2;
    j->load.ns = j->lists.ns = j->authors.ns = o->ns;
    j->load.as_of = j->lists.as_of = j->authors.as_of = as_of;
    j->load.flush = true;
    j->load.source = o->source;
    j->load.quiet = j->lists.quiet = j->authors.quiet = o->quiet;
    /* As cascade-build does: Swing and UserCF share ItemCF's behaviour weights
     * and history cap. */
    j->swing.weights = j->usercf.weights = j->ease.weights = j->itemcf.weights;
    j->swing.max_items_per_user = j->usercf.max_items_per_user = j->itemcf.max_items_per_user;
    j->itemcf.threads = j->swing.threads = j->usercf.threads = j->ease.threads = threads;
    j->itemcf.quiet = j->swing.quiet = j->usercf.quiet = j->ease.quiet = o->quiet;
    return 0;
}

/* Publish one family's CF lists and free them. */
static int publish(const cascade_dataset *ds, cascade_redis *r, const char *ns, const char *family,
                   bool quiet, struct cascade_cf_lists *l, size_t *written, char *err,
                   size_t errlen)
{
    struct cascade_cf_publish_opts po = {.ns = ns, .family = family, .quiet = quiet};
    struct cascade_cf_publish_summary ps;
    int rc = strcmp(family, "usercf") == 0
                 ? cascade_cf_publish_users(ds, l, r, &po, &ps, err, errlen)
                 : cascade_cf_publish_items(ds, l, r, &po, &ps, err, errlen);
    if (rc == 0)
        *written = ps.written;
    cascade_cf_lists_free(l);
    return rc;
}

/* Prefix err with the job's name so the user knows which step failed. */
static int failed(const char *job, int rc, char *err, size_t errlen)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err);
    snprintf(err, errlen, "build %s: %s", job, msg[0] ? msg : cascade_strerror(rc));
    return rc;
}

static int build_cf(const cascade_dataset *ds, cascade_redis *r, const struct build_jobs *j,
                    const struct cascade_eval_build_opts *o, struct cascade_eval_build_summary *s,
                    char *err, size_t errlen)
{
    struct cascade_cf_lists l;
    int64_t t0 = cascade_now_ms();
    int rc = cascade_itemcf_compute(ds, &j->itemcf, &l, err, errlen);
    if (rc != 0 ||
        (rc = publish(ds, r, o->ns, "itemcf", o->quiet, &l, &s->itemcf_lists, err, errlen)) != 0)
        return failed("itemcf", rc, err, errlen);
    s->itemcf_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    if ((rc = cascade_swing_compute(ds, &j->swing, &l, err, errlen)) != 0 ||
        (rc = publish(ds, r, o->ns, "swing", o->quiet, &l, &s->swing_lists, err, errlen)) != 0)
        return failed("swing", rc, err, errlen);
    s->swing_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    if ((rc = cascade_usercf_compute(ds, &j->usercf, &l, err, errlen)) != 0 ||
        (rc = publish(ds, r, o->ns, "usercf", o->quiet, &l, &s->usercf_lists, err, errlen)) != 0)
        return failed("usercf", rc, err, errlen);
    s->usercf_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    if ((rc = cascade_ease_lists_compute(ds, &j->ease, &l, NULL, err, errlen)) != 0 ||
        (rc = publish(ds, r, o->ns, "ease", o->quiet, &l, &s->ease_lists, err, errlen)) != 0)
        return failed("ease", rc, err, errlen);
    s->ease_s = (double)(cascade_now_ms() - t0) / 1000.0;
    return 0;
}

/* The two-tower model on the train part, published into o->two_tower_dir. */
static int build_two_tower(const cascade_dataset *ds, const struct cascade_eval_build_opts *o,
                           struct cascade_eval_build_summary *s, char *err, size_t errlen)
{
    struct cascade_train_twotower_opts to;
    struct cascade_train_twotower_summary ts;
    if (o->two_tower)
        to = *o->two_tower;
    else
        cascade_train_twotower_defaults(&to);
    to.model_dir = o->two_tower_dir;
    to.holdout_frac = 0;
    to.warm_start = false; /* each evaluation trains from scratch, reproducibly */
    /* No hold-out here, so train-two-tower's gate has nothing to measure:
     * the evaluation itself scores the model on its test split. */
    to.gate.force = true;
    to.quiet = o->quiet;
    int rc = cascade_train_twotower_run(ds, &to, &ts, NULL, err, errlen);
    if (rc != 0)
        return failed("two_tower", rc, err, errlen);
    s->two_tower_examples = ts.train;
    s->two_tower_s = ts.seconds;
    s->two_tower_loss = ts.final_loss;
    snprintf(s->two_tower_version, sizeof s->two_tower_version, "%s", ts.version);
    return 0;
}

int cascade_eval_build_run(const cascade_dataset *train, cascade_redis *r,
                           const struct cascade_eval_build_opts *o,
                           struct cascade_eval_build_summary *s, char *err, size_t errlen)
{
    struct build_jobs j;
    struct cascade_load_summary ls;
    struct cascade_lists_summary lss;
    struct cascade_authors_summary as;
    int64_t start = cascade_now_ms(), t0;
    int rc;
    memset(s, 0, sizeof *s);
    err[0] = '\0';
    s->as_of = cascade_dataset_last_ts(train);
    if ((rc = jobs_configure(o, s->as_of, &j, err, errlen)) != 0)
        return rc;
    t0 = cascade_now_ms();
    if ((rc = cascade_load_run(train, r, &j.load, &ls, err, errlen)) != 0)
        return failed("load", rc, err, errlen);
    s->load_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    if ((rc = cascade_lists_run(train, r, &j.lists, &lss, err, errlen)) != 0)
        return failed("lists", rc, err, errlen);
    s->lists_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    if ((rc = cascade_authors_run(train, r, &j.authors, &as, err, errlen)) != 0)
        return failed("authors", rc, err, errlen);
    s->authors_s = (double)(cascade_now_ms() - t0) / 1000.0;
    if ((rc = build_cf(train, r, &j, o, s, err, errlen)) != 0)
        return rc;
    if (o->two_tower_dir && (rc = build_two_tower(train, o, s, err, errlen)) != 0)
        return rc;
    s->total_s = (double)(cascade_now_ms() - start) / 1000.0;
    return 0;
}
