/* cascade-sim's command line: the world's options (the flags cascade-datagen
 * was run with) and the simulation's own. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "flags.h"
#include "sim.h"

void cascade_sim_defaults(struct cascade_sim_opts *o)
{
    memset(o, 0, sizeof(*o));
    cascade_datagen_defaults(&o->world);
    o->world.quiet = true;
    o->target = "127.0.0.1:50051";
    o->users = 200;
    o->days = 3;
    o->requests_per_day = 2;
    o->count = 10;
    o->seed = 1;
    o->timeout_ms = 10000;
}

int cascade_sim_parse_drop(const char *text, struct cascade_sim_drop *d, char *err, size_t errlen)
{
    const char *eq = strchr(text, '='), *colon = strrchr(text, ':');
    char *end = NULL;
    memset(d, 0, sizeof(*d));
    if (!eq || !colon || colon < eq || eq == text || colon == eq + 1 ||
        (size_t)(eq - text) >= sizeof(d->layer) ||
        (size_t)(colon - eq - 1) >= sizeof(d->experiment))
        goto bad;
    memcpy(d->layer, text, (size_t)(eq - text));
    memcpy(d->experiment, eq + 1, (size_t)(colon - eq - 1));
    d->share = strtod(colon + 1, &end);
    if (end == colon + 1 || *end != '\0' || !(d->share > 0 && d->share <= 1))
        goto bad;
    return 0;
bad:
    snprintf(err, errlen,
             "--drop: expected LAYER=EXPERIMENT:SHARE with 0 < SHARE <= 1 (e.g. "
             "rerank=low_lambda:0.3), got \"%s\"",
             text);
    return CASCADE_EINVAL;
}

/* "a=b:0.3,c=d:1" into o->drops. */
static int parse_drops(const char *list, struct cascade_sim_opts *o, char *err, size_t errlen)
{
    char buf[1024];
    if (strlen(list) >= sizeof(buf)) {
        snprintf(err, errlen, "--drop: too long");
        return CASCADE_EINVAL;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_drops == CASCADE_SIM_MAX_DROPS) {
            snprintf(err, errlen, "--drop: at most %d rules", CASCADE_SIM_MAX_DROPS);
            return CASCADE_EINVAL;
        }
        int rc = cascade_sim_parse_drop(tok, &o->drops[o->n_drops], err, errlen);
        if (rc)
            return rc;
        o->n_drops++;
    }
    return 0;
}

int cascade_sim_parse(int argc, char **argv, struct cascade_sim_opts *o, FILE *out, FILE *errf)
{
    char err[512];
    const char *drops = NULL;
    struct cascade_datagen_world_flags world;
    uint64_t sim_users = o->users, sim_days = o->days, rpd = o->requests_per_day, count = o->count;
    struct cascade_flag flags[CASCADE_DATAGEN_WORLD_FLAGS + 12] = {
        {"target", CASCADE_FLAG_STRING, &o->target, "orchestrator host:port", 0, 0},
        {"config", CASCADE_FLAG_STRING, &o->config_path,
         "cascade.json of the stack (its experiments; required with --drop)", 0, 0},
        {"sim-users", CASCADE_FLAG_U64, &sim_users, "users who call (a random sample)", 1, 1e7},
        {"sim-days", CASCADE_FLAG_U64, &sim_days, "simulated days", 1, 3650},
        {"requests-per-day", CASCADE_FLAG_U64, &rpd, "Recommend calls per user and day", 1, 1000},
        {"count", CASCADE_FLAG_U64, &count, "items per Recommend", 1, 200},
        {"sim-seed", CASCADE_FLAG_U64, &o->seed, "user sample, clicks and drops", 0, 0},
        {"start-ts", CASCADE_FLAG_I64, &o->start_ts,
         "simulated day 0, Unix s (0 = now - sim-days: the days end now)", 0, 0},
        {"timeout-ms", CASCADE_FLAG_I64, &o->timeout_ms, "deadline per call", 1, 600000},
        {"drop", CASCADE_FLAG_STRING, &drops,
         "LAYER=EXPERIMENT:SHARE[,...]: that share of the arm's users never call (SRM)", 0, 0},
        {"quiet", CASCADE_FLAG_BOOL, &o->quiet, "no progress lines", 0, 0},
    };
    /* The world: the flags cascade-datagen was run with (--events unused). */
    size_t nflags = 11 + cascade_datagen_world_flags(&o->world, &world, flags + 11);
    int rc = cascade_flags_parse(argc, argv, 1, flags, nflags, err, sizeof(err));
    if (rc == CASCADE_FLAGS_HELP) {
        cascade_flags_usage(out, "cascade-sim --target HOST:PORT [world flags] [flags]",
                            "Closed-loop simulation: users of the synthetic world (the same "
                            "flags as cascade-datagen)\ncall Recommend and click with their true "
                            "probabilities; read the result with cascade-ab.",
                            flags, nflags);
        return -1;
    }
    if (rc == 0 && drops)
        rc = parse_drops(drops, o, err, sizeof(err));
    if (rc) {
        fprintf(errf, "cascade-sim: %s\n", err);
        return CASCADE_SIM_USAGE;
    }
    cascade_datagen_world_flags_apply(&world, &o->world);
    o->users = sim_users;
    o->days = (uint32_t)sim_days;
    o->requests_per_day = (uint32_t)rpd;
    o->count = (uint32_t)count;
    return 0;
}
