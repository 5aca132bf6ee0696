/* cascade-eval --served (eval_served.h): write the train part, start (or
 * reach) a stack, build and train through cascade-build, restart the stack so
 * every service loads the models, then one Recommend per test user per pass,
 * scoring the answer and each stage's order from the trace. */
#include "eval_served.h"

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "arena.h"
#include "cascade/v1/recommender.pb-c.h"
#include "build_cli.h"
#include "clock.h"
#include "error.h"
#include "redis.h"
#include "rpc.h"

extern char **environ;

const char *const cascade_eval_stage_names[CASCADE_EVAL_N_STAGES] = {
    "merged_recall", "filter", "prerank", "rank", "rerank", "served"};

/* Trace stage names behind the waterfall rows (the merge row also takes the
 * hot-list fallback). */
static int stage_row(const char *stage)
{
    static const char *const names[] = {"merge", "filter", "prerank", "rank", "rerank"};
    if (strcmp(stage, "fallback") == 0)
        return CASCADE_EVAL_STAGE_MERGE;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(stage, names[i]) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ processes */

/* Run argv (argv[0] a path) with stdout and stderr appended to log; returns
 * its exit status, or -1 with err set when it could not be started. */
static int run_logged(char *const *argv, const char *log, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Whether log, from byte `from` on, says `what` (case-insensitive). */
static bool log_says(const char *log, long from, const char *what)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(log, "r");
    if (!f)
        return false;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!found && fgets(line, sizeof line, f))
            found = strcasestr(line, what) != NULL;
    fclose(f);
    return found;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The served run's paths and addresses. */
struct served_env {
    char train_dir[PATH_MAX], stack_dir[PATH_MAX], model_dir[PATH_MAX + 16], log[PATH_MAX];
    char build_bin[PATH_MAX];
    char target[128], redis[128], ns[128];
    bool own_stack, stack_up;
};

static int step_failed(const struct served_env *e, const char *what, int status, char *err,
                       size_t errlen)
{
    if (status >= 0)
        snprintf(err, errlen, "%s exited with status %d (see %s)", what, status, e->log);
    return CASCADE_EIO;
}

/* scripts/stack.sh start|stop for the own stack, with extra --set words. */
static int stack(const struct cascade_eval_served_opts *o, struct served_env *e, const char *cmd,
                 const char *set, char *err, size_t errlen)
{
    char port[16], *argv[20];
    size_t n = 0;
    snprintf(port, sizeof port, "%d", o->port_base);
    argv[n++] = "/bin/bash";
    argv[n++] = (char *)o->stack_sh;
    argv[n++] = (char *)cmd;
    argv[n++] = "--port-base";
    argv[n++] = port;
    argv[n++] = "--data-dir";
    argv[n++] = e->stack_dir;
    argv[n++] = "--bin-dir";
    argv[n++] = (char *)o->bin_dir;
    argv[n++] = "--config";
    argv[n++] = (char *)o->config;
    argv[n++] = "--model-dir";
    argv[n++] = e->model_dir;
    argv[n++] = "--timeout";
    argv[n++] = "120";
    if (set) {
        argv[n++] = "--set";
        argv[n++] = (char *)set;
    }
    argv[n] = NULL;
    if (!o->quiet)
        fprintf(stderr, "served: stack.sh %s --port-base %s --data-dir %s%s%s\n", cmd, port,
                e->stack_dir, set ? " --set " : "", set ? set : "");
    int st = run_logged(argv, e->log, err, errlen);
    if (st != 0) {
        char what[64];
        snprintf(what, sizeof what, "stack.sh %s", cmd);
        return step_failed(e, what, st, err, errlen);
    }
    e->stack_up = strcmp(cmd, "start") == 0;
    return 0;
}

/* Poll the orchestrator's health until SERVING: each check waits up to a
 * second, at most 120 checks (stack.sh start has already polled every
 * service; this also covers a stack given with --target). */
static int wait_serving(const struct served_env *e, char *err, size_t errlen)
{
    char last[700] = "no answer";
    cascade_rpc_channel *ch = cascade_rpc_channel_create_env(e->target, 0, last, sizeof last);
    int status = 0, rc = CASCADE_ENOMEM;
    for (int tries = 0; ch && tries < 120; tries++) {
        rc = cascade_rpc_health_check(ch, "", cascade_now_ms() + 1000, &status, last, sizeof last);
        if (rc == 0 && status == 1)
            break;
        if (rc == 0)
            snprintf(last, sizeof last, "status %d", status);
        rc = CASCADE_EUNAVAILABLE;
    }
    if (rc != 0)
        snprintf(err, errlen, "orchestrator %s not SERVING: %s", e->target, last);
    cascade_rpc_channel_destroy(ch);
    return rc;
}

/* cascade-build all, then each trainer of o->models; a trainer that says the
 * data does not support its model is skipped. */
static int build_and_train(const struct cascade_eval_served_opts *o, struct served_env *e,
                           struct cascade_eval_served_result *res, char *err, size_t errlen)
{
    char *all[] = {e->build_bin,  "all",        "--data",      e->train_dir,
                   "--redis",     e->redis,     "--namespace", e->ns,
                   "--model-dir", e->model_dir, "--config",    (char *)o->config,
                   "--flush",     "--quiet",    NULL};
    int64_t t0 = cascade_now_ms();
    if (!o->quiet)
        fprintf(stderr, "served: cascade-build all into %s namespace %s\n", e->redis, e->ns);
    int st = run_logged(all, e->log, err, errlen);
    /* all ends with train-rank: 3 (data without impressions) or 4 (gate
     * refused) still leave every Redis job done. */
    if (st == CASCADE_BUILD_EXIT_DATA || st == CASCADE_BUILD_EXIT_REFUSED) {
        if (!o->quiet)
            fprintf(stderr,
                    "served: cascade-build all: every Redis job done; train-rank %s "
                    "(see %s)\n",
                    st == CASCADE_BUILD_EXIT_DATA ? "not supported by the data" : "refused",
                    e->log);
    } else if (st != 0) {
        return step_failed(e, "cascade-build all", st, err, errlen);
    }
    res->build_s = (double)(cascade_now_ms() - t0) / 1000.0;
    t0 = cascade_now_ms();
    char models[256], *save = NULL;
    snprintf(models, sizeof models, "%s", o->models ? o->models : "");
    for (char *m = strtok_r(models, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        char replay_ns[160];
        snprintf(replay_ns, sizeof replay_ns, "%.100s-ltr-replay", e->ns);
        char *train[] = {e->build_bin,  "train",      m,         "--data", e->train_dir,
                         "--model-dir", e->model_dir, "--quiet", NULL,     NULL,
                         NULL,          NULL,         NULL,      NULL,     NULL};
        /* The learned rankers replay recall: they need the stack's Redis (a
         * private namespace of it) and the served mix of the config. */
        if (strcmp(m, "ltr") == 0) {
            char **extra = train + 8;
            *extra++ = "--redis";
            *extra++ = e->redis;
            *extra++ = "--replay-namespace";
            *extra++ = replay_ns;
            if (o->config) {
                *extra++ = "--config";
                *extra++ = (char *)o->config;
            }
        }
        long from = file_size(e->log);
        if (!o->quiet)
            fprintf(stderr, "served: cascade-build train %s\n", m);
        st = run_logged(train, e->log, err, errlen);
        char *list = res->trained;
        if (st == CASCADE_BUILD_EXIT_REFUSED) {
            /* The gate kept the published model (it was better): it serves. */
            if (!o->quiet)
                fprintf(stderr, "served: %s: the gate kept the published model (see %s)\n", m,
                        e->log);
        } else if (st != 0 && st > 0 && log_says(e->log, from, "does not support")) {
            list = res->skipped;
            if (!o->quiet)
                fprintf(stderr, "served: %s skipped: the data does not support it (see %s)\n", m,
                        e->log);
        } else if (st != 0) {
            char what[128];
            snprintf(what, sizeof what, "cascade-build train %s", m);
            return step_failed(e, what, st, err, errlen);
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof res->trained - len, "%s%s", len ? "," : "", m);
    }
    res->train_s = (double)(cascade_now_ms() - t0) / 1000.0;
    return 0;
}

/* Delete what the first pass left per user (exposure filters, recall cache,
 * hard-negative log) so the second pass starts from the same state. */
static int clear_user_state(const struct served_env *e, char *err, size_t errlen)
{
    char pattern[3][200];
    int rc = 0;
    struct cascade_redis_tool_conn conn;
    struct cascade_redis_opts ro;
    if (cascade_redis_tool_opts(e->redis, 10000, &conn, &ro, err, errlen) != 0)
        return CASCADE_EINVAL;
    cascade_redis *r = cascade_redis_create(&ro);
    cascade_redis_tool_wipe(&conn);
    if (!r)
        return CASCADE_ENOMEM;
    snprintf(pattern[0], sizeof pattern[0], "%s:expo:*", e->ns);
    snprintf(pattern[1], sizeof pattern[1], "%s:user:*:cache", e->ns);
    snprintf(pattern[2], sizeof pattern[2], "%s:user:*:hardneg", e->ns);
    for (int p = 0; p < 3 && rc == 0; p++) {
        char cursor[32] = "0";
        do {
            redisReply *rep = NULL;
            rc = cascade_redis_command(r, &rep, "SCAN %s MATCH %s COUNT 1000", cursor, pattern[p]);
            if (rc == 0 && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
                snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
                for (size_t i = 0; rc == 0 && i < rep->element[1]->elements; i++) {
                    redisReply *d = NULL;
                    rc = cascade_redis_command(r, &d, "DEL %s", rep->element[1]->element[i]->str);
                    if (d)
                        freeReplyObject(d);
                }
            }
            if (rep)
                freeReplyObject(rep);
        } while (rc == 0 && strcmp(cursor, "0") != 0);
    }
    if (rc != 0)
        snprintf(err, errlen, "clearing the users' exposure filters: %s", cascade_redis_error(r));
    cascade_redis_destroy(r);
    return rc;
}

/* ----------------------------------------------------------------- scoring */

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

void cascade_eval_served_score(const cascade_dataset *train, const uint64_t *ids, size_t n,
                               const uint32_t *seen, size_t n_seen, const uint32_t *rel,
                               size_t n_rel, struct cascade_eval_list_acc *acc)
{
    uint32_t list[256];
    size_t m = 0;
    for (size_t i = 0; i < n && m < acc->k && m < sizeof list / sizeof list[0]; i++) {
        long idx = cascade_dataset_find_item(train, ids[i]);
        if (idx < 0 || bsearch(&(uint32_t){(uint32_t)idx}, seen, n_seen, sizeof *seen, cmp_u32))
            continue;
        bool dup = false;
        for (size_t j = 0; j < m && !dup; j++)
            dup = list[j] == (uint32_t)idx;
        if (!dup)
            list[m++] = (uint32_t)idx;
    }
    cascade_eval_list_acc_add(acc, list, m, rel, n_rel);
}

/* Score one answer: each waterfall stage from the trace (a stage without
 * ids keeps the previous stage's order), then the items served. */
static void score_answer(const struct cascade_eval_split *sp, size_t t,
                         const Cascade__V1__RecommendResponse *r,
                         struct cascade_eval_served_pass *pass)
{
    const uint32_t *seen = sp->seen + sp->seen_off[t], *rel = sp->test + sp->test_off[t];
    size_t n_seen = sp->seen_off[t + 1] - sp->seen_off[t],
           n_rel = sp->test_off[t + 1] - sp->test_off[t];
    const uint64_t *ids[CASCADE_EVAL_N_STAGES] = {0};
    size_t n_ids[CASCADE_EVAL_N_STAGES] = {0};
    uint64_t served[256];
    size_t n_served = 0;
    bool have[CASCADE_EVAL_N_STAGES] = {false};
    for (size_t i = 0; r && i < r->n_trace; i++) {
        int row = stage_row(r->trace[i]->stage);
        if (row >= 0 && r->trace[i]->n_item_ids > 0) {
            ids[row] = r->trace[i]->item_ids;
            n_ids[row] = r->trace[i]->n_item_ids;
            have[row] = true;
        }
    }
    for (size_t i = 0; r && i < r->n_items && n_served < 256; i++)
        served[n_served++] = r->items[i]->item_id;
    for (int s = 0; s < CASCADE_EVAL_STAGE_SERVED; s++) {
        if (!have[s]) {
            pass->missing[s]++;
            if (s > 0) {
                ids[s] = ids[s - 1];
                n_ids[s] = n_ids[s - 1];
            }
        }
        cascade_eval_served_score(sp->train, ids[s], n_ids[s], seen, n_seen, rel, n_rel,
                                  &pass->acc[s]);
    }
    cascade_eval_served_score(sp->train, served, n_served, seen, n_seen, rel, n_rel,
                              &pass->acc[CASCADE_EVAL_STAGE_SERVED]);
}

/* One Recommend (count k, debug) per test user. */
static int run_pass(const struct cascade_eval_split *sp, const double *pct,
                    const struct cascade_eval_served_opts *o, const struct served_env *e,
                    const char *label, struct cascade_eval_served_pass *pass, char *err,
                    size_t errlen)
{
    int rc = 0;
    int64_t t0 = cascade_now_ms(), last = t0;
    for (int s = 0; s < CASCADE_EVAL_N_STAGES && rc == 0; s++)
        rc = cascade_eval_list_acc_init(&pass->acc[s], o->k, sp->train->n_items, pct);
    char why[700] = "out of memory";
    cascade_rpc_channel *ch =
        rc == 0 ? cascade_rpc_channel_create_env(e->target, 64u << 20, why, sizeof why) : NULL;
    cascade_arena *arena = cascade_arena_create(0);
    if (rc != 0 || !ch || !arena) {
        snprintf(err, errlen, "%s", why);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    /* A stack with a bearer token (--target): the token from the environment. */
    if ((rc = cascade_rpc_channel_auth_from_env(ch, err, errlen)) != 0)
        goto out;
    int64_t as_of = cascade_dataset_last_ts(sp->train);
    for (size_t t = 0; t < sp->n_users; t++) {
        Cascade__V1__UserContext user = CASCADE__V1__USER_CONTEXT__INIT;
        Cascade__V1__RecommendRequest req = CASCADE__V1__RECOMMEND_REQUEST__INIT;
        user.user_id = sp->train->users[sp->users[t]].id;
        user.request_time_s = as_of;
        req.user = &user;
        req.count = (uint32_t)o->k;
        req.debug = true;
        struct cascade_rpc_call call = {.channel = ch,
                                        .method = "/cascade.v1.Recommender/Recommend",
                                        .request = &req.base,
                                        .response_type =
                                            &cascade__v1__recommend_response__descriptor,
                                        .deadline_ms = cascade_now_ms() + o->timeout_ms};
        cascade_arena_reset(arena);
        const Cascade__V1__RecommendResponse *r = NULL;
        if (cascade_rpc_call_unary(&call, arena) == 0)
            r = (const Cascade__V1__RecommendResponse *)call.response;
        else if (pass->failed++ == 0 && !o->quiet)
            fprintf(stderr, "served: user %s: %s: %s (scored as an empty list)\n", user.user_id,
                    cascade_grpc_status_name(call.status),
                    call.status_message ? call.status_message : "");
        pass->degraded += r && r->degraded;
        score_answer(sp, t, r, pass);
        int64_t now = cascade_now_ms();
        if (!o->quiet && (now - last >= 2000 || t + 1 == sp->n_users)) {
            double el = (double)(now - t0) / 1000.0;
            fprintf(stderr, "served %s: %zu/%zu users, %.1fs, %.1f ms/user, %zu failed\n", label,
                    t + 1, sp->n_users, el, 1000.0 * el / (double)(t + 1), pass->failed);
            last = now;
        }
    }
    pass->seconds = (double)(cascade_now_ms() - t0) / 1000.0;
out:
    cascade_arena_destroy(arena);
    cascade_rpc_channel_destroy(ch);
    return rc;
}

/* ------------------------------------------------------------------- run */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -r path; a missing path is fine. */
static int remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int make_env(const struct cascade_eval_served_opts *o, struct served_env *e, char *err,
                    size_t errlen)
{
    memset(e, 0, sizeof *e);
    e->own_stack = o->target == NULL;
    if (mkdir(o->work_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--served-dir %s: %s", o->work_dir, strerror(errno));
        return CASCADE_EIO;
    }
    snprintf(e->train_dir, sizeof e->train_dir, "%.3900s/train", o->work_dir);
    snprintf(e->stack_dir, sizeof e->stack_dir, "%.3900s/stack", o->work_dir);
    snprintf(e->log, sizeof e->log, "%.3900s/served.log", o->work_dir);
    snprintf(e->build_bin, sizeof e->build_bin, "%.3900s/cascade-build", o->bin_dir);
    if (mkdir(e->train_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", e->train_dir, strerror(errno));
        return CASCADE_EIO;
    }
    if (e->own_stack) {
        snprintf(e->model_dir, sizeof e->model_dir, "%s/models", e->stack_dir);
        /* Every run trains from nothing: a model left by an earlier run
         * (other data, another split) must neither serve nor be the gate's
         * published model. */
        if (remove_tree(e->model_dir) != 0) {
            snprintf(err, errlen, "%s: cannot clear the models of an earlier run: %s", e->model_dir,
                     strerror(errno));
            return CASCADE_EIO;
        }
        snprintf(e->target, sizeof e->target, "127.0.0.1:%d", o->port_base);
        snprintf(e->redis, sizeof e->redis, "127.0.0.1:%d", o->port_base + 9);
        snprintf(e->ns, sizeof e->ns, "%s", o->ns);
    } else {
        snprintf(e->model_dir, sizeof e->model_dir, "%s", o->model_dir);
        snprintf(e->target, sizeof e->target, "%s", o->target);
        snprintf(e->redis, sizeof e->redis, "%s", o->redis);
        snprintf(e->ns, sizeof e->ns, "%s", o->ns);
    }
    return 0;
}

int cascade_eval_served_run(const struct cascade_eval_split *split, const double *pct,
                            const struct cascade_eval_served_opts *o,
                            struct cascade_eval_served_result *res, char *err, size_t errlen)
{
    struct served_env e;
    char stop_err[256];
    memset(res, 0, sizeof *res);
    int rc = make_env(o, &e, err, errlen);
    if (rc == 0 && (rc = cascade_dataset_write(split->train, e.train_dir, err, errlen)) == 0 &&
        !o->quiet)
        fprintf(stderr, "served: train part written to %s; logs in %s\n", e.train_dir, e.log);
    int64_t t0 = cascade_now_ms();
    if (rc == 0 && e.own_stack)
        rc = stack(o, &e, "start", NULL, err, errlen);
    if (rc == 0)
        rc = build_and_train(o, &e, res, err, errlen);
    /* Restart so every service loads the models just trained. */
    if (rc == 0 && e.own_stack && (rc = stack(o, &e, "stop", NULL, err, errlen)) == 0)
        rc = stack(o, &e, "start", NULL, err, errlen);
    if (rc == 0)
        rc = wait_serving(&e, err, errlen);
    res->stack_s = (double)(cascade_now_ms() - t0) / 1000.0 - res->build_s - res->train_s;
    if (rc == 0)
        rc = run_pass(split, pct, o, &e, "pass 1", &res->with, err, errlen);
    if (rc == 0 && o->explore_cost) {
        if ((rc = clear_user_state(&e, err, errlen)) == 0 &&
            (rc = stack(o, &e, "stop", NULL, err, errlen)) == 0 &&
            (rc = stack(o, &e, "start", "orchestrator.exploration.new_share=0", err, errlen)) ==
                0 &&
            (rc = wait_serving(&e, err, errlen)) == 0)
            rc = run_pass(split, pct, o, &e, "exploration off", &res->without, err, errlen);
        res->has_without = rc == 0;
    }
    if (e.own_stack && e.stack_up && !o->keep_stack)
        stack(o, &e, "stop", NULL, stop_err, sizeof stop_err);
    else if (e.own_stack && e.stack_up && !o->quiet)
        fprintf(stderr, "served: stack left running: %s stop --data-dir %s\n", o->stack_sh,
                e.stack_dir);
    return rc;
}

void cascade_eval_served_free(struct cascade_eval_served_result *res)
{
    for (int s = 0; s < CASCADE_EVAL_N_STAGES; s++) {
        cascade_eval_list_acc_free(&res->with.acc[s]);
        cascade_eval_list_acc_free(&res->without.acc[s]);
    }
}
