/* Parsing of the "orchestrator" config section: channels (normal and
 * cold-start mix), stage endpoints and budgets, exploration, recall cache,
 * hard-negative log, merge and feedback limits. Endpoints may be symbolic names looked
 * up in orchestrator.endpoints so one override (e.g. from scripts/stack.sh)
 * moves every user of an endpoint at once. */
#include "orch_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "orchestrator.h"
#include "request.h"

/* Built-in endpoint names and the default ports of SPEC §5. */
static const struct {
    const char *name;
    const char *addr;
} default_endpoints[] = {
    {"recall", "127.0.0.1:50051"}, {"filter", "127.0.0.1:50052"}, {"prerank", "127.0.0.1:50053"},
    {"rank", "127.0.0.1:50054"},   {"rerank", "127.0.0.1:50055"},
};

/* Channels used when the config lists none. */
static const struct {
    const char *name;
    double weight;
    uint32_t quota;
} default_channels[] = {
    {"hot", 1.0, 500},
    {"itemcf", 2.0, 1000},
};

#define DEFAULT_CHANNEL_TIMEOUT_MS 300
#define DEFAULT_STAGE_TIMEOUT_MS 300
#define DEFAULT_STAGE_MIN_MS 20 /* stages.<s>.min_ms, exposure.min_ms, recall.min_ms */

static bool is_address(const char *s)
{
    return strchr(s, ':') != NULL;
}

static bool copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Look `name` up in orchestrator.endpoints, then in the built-in table.
 * Returns the address or NULL. */
static const char *lookup_endpoint(const cascade_config *cfg, const char *name)
{
    json_t *map = cascade_config_get(cfg, "orchestrator.endpoints");
    if (json_is_object(map)) {
        json_t *v = json_object_get(map, name);
        if (json_is_string(v))
            return json_string_value(v);
    }
    for (size_t i = 0; i < sizeof default_endpoints / sizeof default_endpoints[0]; i++)
        if (strcmp(default_endpoints[i].name, name) == 0)
            return default_endpoints[i].addr;
    return NULL;
}

/* Resolve an endpoint value (address or name) into out. `what` names the
 * config entry in error messages. */
static int resolve_endpoint(const cascade_config *cfg, const char *value, const char *what,
                            char *out, size_t outlen, char *err, size_t errlen)
{
    const char *addr = is_address(value) ? value : lookup_endpoint(cfg, value);
    if (addr == NULL || !is_address(addr)) {
        snprintf(
            err, errlen,
            "%s: orchestrator: %s: endpoint \"%s\" is neither host:port (or unix:/path) nor a name "
            "with an address in orchestrator.endpoints",
            cascade_config_source(cfg), what, value);
        return CASCADE_EINVAL;
    }
    if (!copy_str(out, outlen, addr)) {
        snprintf(err, errlen, "%s: orchestrator: %s: endpoint too long", cascade_config_source(cfg),
                 what);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* A channel list being parsed: its config path, for messages. */
struct channel_list {
    const char *path; /* "orchestrator.channels" */
    struct cascade_orch_channel_cfg *items;
    size_t *n;
};

static int bad_field(const cascade_config *cfg, const char *path, size_t i, const char *field,
                     const char *expect, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s[%zu].%s: expected %s", cascade_config_source(cfg), path, i, field,
             expect);
    return CASCADE_EINVAL;
}

/* Read a number field of a channel object; def when absent. */
static int channel_number(const cascade_config *cfg, const char *path, json_t *obj, size_t i,
                          const char *field, double def, double min, double max, double *out,
                          char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max) {
        char expect[96];
        snprintf(expect, sizeof expect, "a number in [%g, %g]", min, max);
        return bad_field(cfg, path, i, field, expect, err, errlen);
    }
    *out = json_number_value(v);
    return 0;
}

/* Fill one channel from its JSON object. */
static int parse_channel(const cascade_config *cfg, const char *path, json_t *obj, size_t i,
                         struct cascade_orch_channel_cfg *ch, char *err, size_t errlen)
{
    double weight, quota, timeout;
    int rc;
    if (!json_is_object(obj))
        return bad_field(cfg, path, i, "", "an object", err, errlen);
    json_t *name = json_object_get(obj, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        !copy_str(ch->name, sizeof ch->name, json_string_value(name)))
        return bad_field(cfg, path, i, "name", "a non-empty string of at most 63 bytes", err,
                         errlen);
    if ((rc = channel_number(cfg, path, obj, i, "weight", 1.0, 0.0, 1e6, &weight, err, errlen)) ||
        (rc = channel_number(cfg, path, obj, i, "quota", 500, 1, 5000, &quota, err, errlen)) ||
        (rc = channel_number(cfg, path, obj, i, "timeout_ms", DEFAULT_CHANNEL_TIMEOUT_MS, 1, 600000,
                             &timeout, err, errlen)))
        return rc;
    ch->weight = weight;
    ch->quota = (uint32_t)quota;
    ch->timeout_ms = (int)timeout;

    /* orchestrator.endpoints.recall_<name> moves one channel to its own service. */
    char override_name[CASCADE_ORCH_NAME_MAX + 8];
    snprintf(override_name, sizeof override_name, "recall_%s", ch->name);
    json_t *map = cascade_config_get(cfg, "orchestrator.endpoints");
    json_t *endpoint = json_object_get(obj, "endpoint");
    const char *value = "recall";
    if (json_is_object(map) && json_is_string(json_object_get(map, override_name)))
        value = override_name;
    else if (json_is_string(endpoint))
        value = json_string_value(endpoint);
    else if (endpoint != NULL)
        return bad_field(cfg, path, i, "endpoint", "a string (host:port or endpoint name)", err,
                         errlen);
    char what[96];
    snprintf(what, sizeof what, "channel %s", ch->name);
    return resolve_endpoint(cfg, value, what, ch->endpoint, sizeof ch->endpoint, err, errlen);
}

static bool channel_enabled(json_t *obj)
{
    json_t *v = json_object_get(obj, "enabled");
    return v == NULL || !json_is_false(v);
}

static const struct cascade_orch_channel_cfg *find_channel(const struct channel_list *l,
                                                           const char *name)
{
    for (size_t i = 0; i < *l->n; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

/* The built-in channels, used when the config lists none. */
static int default_channel_list(const cascade_config *cfg, struct channel_list *l, char *err,
                                size_t errlen)
{
    for (size_t i = 0; i < sizeof default_channels / sizeof default_channels[0]; i++) {
        struct cascade_orch_channel_cfg *ch = &l->items[(*l->n)++];
        copy_str(ch->name, sizeof ch->name, default_channels[i].name);
        ch->weight = default_channels[i].weight;
        ch->quota = default_channels[i].quota;
        ch->timeout_ms = DEFAULT_CHANNEL_TIMEOUT_MS;
        int rc = resolve_endpoint(cfg, "recall", ch->name, ch->endpoint, sizeof ch->endpoint, err,
                                  errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* Parse the list of channel objects at l->path (absent = empty list). */
static int parse_channel_list(const cascade_config *cfg, struct channel_list *l, char *err,
                              size_t errlen)
{
    json_t *list = cascade_config_get(cfg, l->path);
    *l->n = 0;
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        snprintf(err, errlen, "%s: %s: expected a list of channel objects",
                 cascade_config_source(cfg), l->path);
        return CASCADE_EINVAL;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(list, i, obj)
    {
        if (json_is_object(obj) && !channel_enabled(obj))
            continue;
        if (*l->n == CASCADE_ORCH_MAX_CHANNELS) {
            snprintf(err, errlen, "%s: %s: at most %d channels", cascade_config_source(cfg),
                     l->path, CASCADE_ORCH_MAX_CHANNELS);
            return CASCADE_EINVAL;
        }
        struct cascade_orch_channel_cfg *ch = &l->items[*l->n];
        int rc = parse_channel(cfg, l->path, obj, i, ch, err, errlen);
        if (rc)
            return rc;
        if (find_channel(l, ch->name) != NULL) {
            snprintf(err, errlen, "%s: %s[%zu]: duplicate channel \"%s\"",
                     cascade_config_source(cfg), l->path, i, ch->name);
            return CASCADE_EINVAL;
        }
        (*l->n)++;
    }
    return 0;
}

static int parse_channels(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                          size_t errlen)
{
    struct channel_list normal = {"orchestrator.channels", out->channels, &out->n_channels};
    struct channel_list cold = {"orchestrator.cold_start.channels", out->cold_channels,
                                &out->n_cold_channels};
    int rc;
    if (cascade_config_get(cfg, normal.path) == NULL)
        rc = default_channel_list(cfg, &normal, err, errlen);
    else
        rc = parse_channel_list(cfg, &normal, err, errlen);
    return rc ? rc : parse_channel_list(cfg, &cold, err, errlen);
}

static bool valid_track_name(const char *s)
{
    if (!*s || strlen(s) >= CASCADE_ORCH_TRACK_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* orchestrator.stages.<name>.endpoint as a list of {track, endpoint, weight}. */
static int parse_tracks(const cascade_config *cfg, const char *name, const json_t *list,
                        struct cascade_orch_stage_cfg *st, char *err, size_t errlen)
{
    char what[160];
    size_t n = json_array_size(list);
    if (n == 0 || n > CASCADE_ORCH_MAX_TRACKS) {
        snprintf(err, errlen,
                 "%s: orchestrator.stages.%s.endpoint: an endpoint group needs 1..%d tracks",
                 cascade_config_source(cfg), name, CASCADE_ORCH_MAX_TRACKS);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(list, i);
        const json_t *jt = json_object_get(t, "track"), *je = json_object_get(t, "endpoint");
        const json_t *jw = json_object_get(t, "weight");
        snprintf(what, sizeof what, "orchestrator.stages.%s.endpoint[%zu]", name, i);
        if (!json_is_string(jt) || !valid_track_name(json_string_value(jt)) ||
            !json_is_string(je) || !json_is_number(jw) || !(json_number_value(jw) > 0) ||
            !isfinite(json_number_value(jw))) {
            snprintf(err, errlen,
                     "%s: %s: expected {\"track\": name ([a-z0-9_], 1..%d bytes), "
                     "\"endpoint\": host:port or name, \"weight\": number > 0}",
                     cascade_config_source(cfg), what, CASCADE_ORCH_TRACK_MAX - 1);
            return CASCADE_EINVAL;
        }
        struct cascade_orch_track_cfg *tr = &st->tracks[i];
        snprintf(tr->name, sizeof tr->name, "%s", json_string_value(jt));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(st->tracks[j].name, tr->name) == 0) {
                snprintf(err, errlen, "%s: %s: track \"%s\" named twice",
                         cascade_config_source(cfg), what, tr->name);
                return CASCADE_EINVAL;
            }
        }
        tr->weight = json_number_value(jw);
        int rc = resolve_endpoint(cfg, json_string_value(je), what, tr->endpoint,
                                  sizeof tr->endpoint, err, errlen);
        if (rc)
            return rc;
    }
    st->n_tracks = n;
    memcpy(st->endpoint, st->tracks[0].endpoint, sizeof st->endpoint);
    return 0;
}

size_t cascade_orch_config_track(const struct cascade_orch_stage_cfg *st, const char *user_id)
{
    if (st->n_tracks < 2)
        return 0;
    double total = 0, cum = 0;
    for (size_t i = 0; i < st->n_tracks; i++)
        total += st->tracks[i].weight;
    double at = (double)cascade_hash_bucket(user_id, st->track_salt, 10000) / 10000.0 * total;
    for (size_t i = 0; i < st->n_tracks; i++) {
        cum += st->tracks[i].weight;
        if (at < cum)
            return i;
    }
    return st->n_tracks - 1;
}

/* orchestrator.stages.<name>.{enabled,endpoint,timeout_ms,keep,min_ms,track_salt} */
static int parse_stage(const cascade_config *cfg, const char *name, uint32_t default_keep,
                       struct cascade_orch_stage_cfg *st, char *err, size_t errlen)
{
    char path[128];
    int64_t timeout, keep, min_ms;
    const char *endpoint;
    int rc;

    snprintf(path, sizeof path, "orchestrator.stages.%s.enabled", name);
    if ((rc = cascade_config_bool(cfg, path, true, &st->enabled, err, errlen)))
        return rc;
    snprintf(path, sizeof path, "orchestrator.stages.%s.timeout_ms", name);
    if ((rc = cascade_config_int(cfg, path, DEFAULT_STAGE_TIMEOUT_MS, 1, 600000, &timeout, err,
                                 errlen)))
        return rc;
    snprintf(path, sizeof path, "orchestrator.stages.%s.keep", name);
    if ((rc = cascade_config_int(cfg, path, default_keep, 0, 20000, &keep, err, errlen)))
        return rc;
    snprintf(path, sizeof path, "orchestrator.stages.%s.min_ms", name);
    if ((rc = cascade_config_int(cfg, path, DEFAULT_STAGE_MIN_MS, 0, 60000, &min_ms, err, errlen)))
        return rc;
    st->min_ms = (int)min_ms;
    st->timeout_ms = (int)timeout;
    st->keep = (uint32_t)keep;
    char salt[CASCADE_ORCH_NAME_MAX];
    const char *track_salt;
    snprintf(salt, sizeof salt, "%s-track", name);
    snprintf(path, sizeof path, "orchestrator.stages.%s.track_salt", name);
    if ((rc = cascade_config_string(cfg, path, salt, &track_salt, err, errlen)))
        return rc;
    if (!*track_salt || !copy_str(st->track_salt, sizeof st->track_salt, track_salt)) {
        snprintf(err, errlen, "%s: %s: 1..%d bytes", cascade_config_source(cfg), path,
                 CASCADE_ORCH_NAME_MAX - 1);
        return CASCADE_EINVAL;
    }
    snprintf(path, sizeof path, "orchestrator.stages.%s.endpoint", name);
    const json_t *group = cascade_config_get(cfg, path);
    if (json_is_array(group))
        return parse_tracks(cfg, name, group, st, err, errlen);
    if ((rc = cascade_config_string(cfg, path, name, &endpoint, err, errlen)))
        return rc;
    snprintf(path, sizeof path, "stage %s", name);
    return resolve_endpoint(cfg, endpoint, path, st->endpoint, sizeof st->endpoint, err, errlen);
}

/* The time each step keeps back from the request's deadline for the steps
 * after it, so a stalled stage cannot use up a caller's whole deadline and
 * leave nothing for re-rank and the exposure reservation:
 * orchestrator.exposure.min_ms and orchestrator.recall.min_ms, then every
 * enabled stage's min_ms summed from the end (recall → filter → prerank →
 * rank → rerank → exposure). */
static int parse_reserves(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                          size_t errlen)
{
    int64_t exposure_min, recall_min;
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.exposure.min_ms", DEFAULT_STAGE_MIN_MS, 0,
                                 60000, &exposure_min, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.recall.min_ms", DEFAULT_STAGE_MIN_MS, 0, 60000,
                                 &recall_min, err, errlen)))
        return rc;
    if ((rc = cascade_config_bool(cfg, "orchestrator.recall.batch", true, &out->recall_batch, err,
                                  errlen)) ||
        (rc = cascade_config_bool(cfg, "orchestrator.compact_stage_calls", true,
                                  &out->compact_stage_calls, err, errlen)))
        return rc;
    out->exposure_min_ms = (int)exposure_min;
    out->recall_min_ms = (int)recall_min;
    struct cascade_orch_stage_cfg *order[] = {&out->filter, &out->prerank, &out->rank,
                                              &out->rerank};
    /* The exposure reservation runs through the filter: none without it. */
    int later = out->filter.enabled ? out->exposure_min_ms : 0;
    for (size_t i = sizeof order / sizeof order[0]; i-- > 0;) {
        order[i]->reserve_ms = later;
        if (order[i]->enabled)
            later += order[i]->min_ms;
    }
    out->recall_reserve_ms = later;
    return 0;
}

/* Scalar limits of the section. */
static int parse_limits(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                        size_t errlen)
{
    int64_t v[7];
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.deadline_ms", 2000, 1, 600000, &v[0], err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.merge_max", 2000, 1, 20000, &v[1], err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.exposure.timeout_ms", 300, 1, 600000, &v[2],
                                 err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.fallback.hot_max", 500, 1, 5000, &v[3], err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.feedback.lastn_max", 1000, 1, 10000, &v[4], err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.feedback.events_maxlen", 1000000, 1000,
                                 1000000000, &v[5], err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.max_message_bytes", 16 << 20, 1 << 16, 1 << 30,
                                 &v[6], err, errlen)))
        return rc;
    out->deadline_ms = (int)v[0];
    out->merge_max = (uint32_t)v[1];
    out->exposure_timeout_ms = (int)v[2];
    out->fallback_max = (uint32_t)v[3];
    out->lastn_max = (uint32_t)v[4];
    out->events_maxlen = (uint32_t)v[5];
    out->max_message_bytes = (size_t)v[6];
    return 0;
}

/* feedback.dedupe_window_s, feedback.dedupe_max, feedback.timeout_ms (the
 * other feedback.* limits are parsed with the scalar limits). */
static int parse_feedback(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                          size_t errlen)
{
    int64_t window_s, dedupe_max, timeout_ms;
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.feedback.dedupe_window_s", 86400, 60,
                                 30 * 86400, &window_s, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.feedback.dedupe_max", 10000, 1000, 1000000,
                                 &dedupe_max, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.feedback.timeout_ms", 500, 1, 60000,
                                 &timeout_ms, err, errlen)))
        return rc;
    out->feedback_dedupe_window_s = window_s;
    out->feedback_dedupe_max = (uint32_t)dedupe_max;
    out->feedback_timeout_ms = (int)timeout_ms;
    return 0;
}

/* cold_start.min_interactions, exploration.*, cache.* */
static int parse_user_features(const cascade_config *cfg, struct cascade_orch_config *out,
                               char *err, size_t errlen)
{
    int64_t min_interactions, capacity, ttl, explore_candidates;
    const char *explore_channel;
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.cold_start.min_interactions", 5, 0, 1000000,
                                 &min_interactions, err, errlen)) ||
        (rc = cascade_config_double(cfg, "orchestrator.exploration.new_share", 0.05, 0.0, 1.0,
                                    &out->explore_share, err, errlen)) ||
        (rc = cascade_config_double(cfg, "orchestrator.exploration.position", 0.8, 0.0, 1.0,
                                    &out->explore_position, err, errlen)) ||
        (rc = cascade_config_double(cfg, "orchestrator.exploration.max_rank_share", 0.5, 0.0, 1.0,
                                    &out->explore_max_rank_share, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.exploration.candidates", 20, 1, 1000,
                                 &explore_candidates, err, errlen)) ||
        (rc = cascade_config_string(cfg, "orchestrator.exploration.channel", "new",
                                    &explore_channel, err, errlen)) ||
        (rc = cascade_config_bool(cfg, "orchestrator.cache.enabled", true, &out->cache_enabled, err,
                                  errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.cache.capacity", 200, 1, 100000, &capacity, err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.cache.ttl_s", 7 * 86400, 0, 366 * 86400, &ttl,
                                 err, errlen)))
        return rc;
    if (!copy_str(out->explore_channel, sizeof out->explore_channel, explore_channel)) {
        snprintf(err, errlen, "%s: orchestrator.exploration.channel: at most %d bytes",
                 cascade_config_source(cfg), CASCADE_ORCH_NAME_MAX - 1);
        return CASCADE_EINVAL;
    }
    out->cold_min_interactions = (uint32_t)min_interactions;
    out->explore_candidates = (uint32_t)explore_candidates;
    out->cache_capacity = (uint32_t)capacity;
    out->cache_ttl_s = ttl;
    return 0;
}

/* hard_negatives.{enabled,per_request,cap,ttl_s} */
static int parse_hard_negatives(const cascade_config *cfg, struct cascade_orch_config *out,
                                char *err, size_t errlen)
{
    int64_t per_request, cap;
    int rc;
    if ((rc = cascade_config_bool(cfg, "orchestrator.hard_negatives.enabled", true,
                                  &out->hardneg_enabled, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.hard_negatives.per_request", 20, 1, 1000,
                                 &per_request, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.hard_negatives.cap", 200, 1, 100000, &cap, err,
                                 errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.hard_negatives.ttl_s", 30 * 86400, 0,
                                 366 * 86400, &out->hardneg_ttl_s, err, errlen)))
        return rc;
    out->hardneg_per_request = (uint32_t)per_request;
    out->hardneg_cap = (uint32_t)cap;
    return 0;
}

/* One orchestrator.slots entry: {"position": 8, "source": "exploration"} or
 * {"position": 0, "item_id": 123, "source": "ops:campaign"}. */
static int parse_slot(const cascade_config *cfg, json_t *obj, size_t i,
                      struct cascade_orch_slot_cfg *sl, char *err, size_t errlen)
{
    const char *path = "orchestrator.slots";
    double position, item;
    int rc;
    if (!json_is_object(obj))
        return bad_field(cfg, path, i, "", "an object", err, errlen);
    json_t *source = json_object_get(obj, "source");
    if (!json_is_string(source) || !cascade_request_id_valid(json_string_value(source)))
        return bad_field(cfg, path, i, "source",
                         "\"exploration\" or 1..64 characters of [A-Za-z0-9._:-]", err, errlen);
    snprintf(sl->source, sizeof sl->source, "%s", json_string_value(source));
    bool explore = strcmp(sl->source, "exploration") == 0;
    if ((rc = channel_number(cfg, path, obj, i, "position", -1, 0, CASCADE_ORCH_MAX_COUNT - 1,
                             &position, err, errlen)) ||
        (rc = channel_number(cfg, path, obj, i, "item_id", 0, 0, 9007199254740992.0, &item, err,
                             errlen)))
        return rc;
    if (position < 0 || position != (double)(uint32_t)position)
        return bad_field(cfg, path, i, "position", "an integer in [0, 199]", err, errlen);
    if (explore ? item != 0 : !(item >= 1) || item != (double)(uint64_t)item)
        return bad_field(cfg, path, i, "item_id",
                         explore ? "none for an exploration slot"
                                 : "a positive integer (an item slot needs its item)",
                         err, errlen);
    sl->position = (uint32_t)position;
    sl->item_id = (uint64_t)item;
    return 0;
}

/* orchestrator.slots: at most CASCADE_SLOTS_MAX; positions used once per
 * kind (item slots, exploration slots), items once. */
static int parse_slots(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                       size_t errlen)
{
    json_t *list = cascade_config_get(cfg, "orchestrator.slots");
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list) || json_array_size(list) > CASCADE_SLOTS_MAX) {
        snprintf(err, errlen, "%s: orchestrator.slots: expected a list of at most %d slots",
                 cascade_config_source(cfg), CASCADE_SLOTS_MAX);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        struct cascade_orch_slot_cfg *sl = &out->slots[i];
        int rc = parse_slot(cfg, json_array_get(list, i), i, sl, err, errlen);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++) {
            const struct cascade_orch_slot_cfg *o = &out->slots[j];
            if ((o->item_id == 0) == (sl->item_id == 0) && o->position == sl->position)
                return bad_field(cfg, "orchestrator.slots", i, "position",
                                 "a position no earlier slot of its kind has", err, errlen);
            if (sl->item_id && o->item_id == sl->item_id)
                return bad_field(cfg, "orchestrator.slots", i, "item_id",
                                 "an item no earlier slot has", err, errlen);
        }
        out->n_slots = i + 1;
    }
    return 0;
}

/* serve_log.{enabled,max_len}: the serve record stream {ns}:serves. */
static int parse_serve_log(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                           size_t errlen)
{
    int64_t max_len;
    int rc;
    if ((rc = cascade_config_bool(cfg, "orchestrator.serve_log.enabled", true,
                                  &out->serve_log_enabled, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.serve_log.max_len", 1000000, 1000, 1000000000,
                                 &max_len, err, errlen)))
        return rc;
    out->serve_log_max_len = (uint32_t)max_len;
    return 0;
}

/* exploration.target_impressions / target_window_s (the new-item target)
 * and the build's list caps that PutItems keeps (same keys and defaults as
 * cascade-build lists and authors). */
static int parse_items(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                       size_t errlen)
{
    int64_t target, window, geo_cap, city_cap, author_cap;
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.exploration.target_impressions", 0, 0,
                                 100000000, &target, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.exploration.target_window_s", 86400, 60,
                                 366 * 86400, &window, err, errlen)) ||
        (rc = cascade_config_double(cfg, "orchestrator.exploration.guarantee_deficit", 0.5, 0.0,
                                    1e9, &out->boost_guarantee_deficit, err, errlen)) ||
        (rc = cascade_config_int(cfg, "build.geo.cap", 500, 1, 1000000, &geo_cap, err, errlen)) ||
        (rc =
             cascade_config_int(cfg, "build.city.cap", 1000, 1, 1000000, &city_cap, err, errlen)) ||
        (rc = cascade_config_int(cfg, "build.authors.items_cap", 200, 1, 1000000, &author_cap, err,
                                 errlen)))
        return rc;
    out->boost_target = (uint32_t)target;
    out->boost_window_s = window;
    out->put_geo_cap = (uint32_t)geo_cap;
    out->put_city_cap = (uint32_t)city_cap;
    out->put_author_cap = (uint32_t)author_cap;
    return 0;
}

/* reconnect.*: how quickly a stage channel tries again after its stage went
 * away (defaults: back within a second of the stage serving again). */
static int parse_reconnect(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                           size_t errlen)
{
    int64_t initial_ms, max_ms, connect_ms;
    int rc;
    if ((rc = cascade_config_int(cfg, "orchestrator.reconnect.initial_backoff_ms", 100, 10, 60000,
                                 &initial_ms, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.reconnect.max_backoff_ms", 800, 10, 600000,
                                 &max_ms, err, errlen)) ||
        (rc = cascade_config_int(cfg, "orchestrator.reconnect.connect_timeout_ms", 1000, 10, 60000,
                                 &connect_ms, err, errlen)))
        return rc;
    if (max_ms < initial_ms) {
        snprintf(err, errlen,
                 "orchestrator.reconnect.max_backoff_ms: %lld is below initial_backoff_ms %lld",
                 (long long)max_ms, (long long)initial_ms);
        return CASCADE_EINVAL;
    }
    out->reconnect_initial_backoff_ms = (int)initial_ms;
    out->reconnect_max_backoff_ms = (int)max_ms;
    out->connect_timeout_ms = (int)connect_ms;
    return 0;
}

/* tls.{ca_file,client_cert_file,client_key_file}: the stage channels' TLS. */
static int parse_tls(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                     size_t errlen)
{
    const char *keys[3] = {"tls.ca_file", "tls.client_cert_file", "tls.client_key_file"};
    char *dst[3] = {out->tls_ca_file, out->tls_cert_file, out->tls_key_file};
    for (int i = 0; i < 3; i++) {
        const char *v = NULL;
        int rc = cascade_config_string(cfg, keys[i], "", &v, err, errlen);
        if (rc)
            return rc;
        if (strlen(v) >= sizeof(out->tls_ca_file)) {
            snprintf(err, errlen, "%s: longer than %zu characters", keys[i],
                     sizeof(out->tls_ca_file) - 1);
            return CASCADE_EINVAL;
        }
        snprintf(dst[i], sizeof(out->tls_ca_file), "%s", v);
    }
    return 0;
}

/* debug.{enabled,loopback,token}. The token travels in metadata, so it must
 * be printable ASCII (no spaces or control characters). */
static int parse_debug(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                       size_t errlen)
{
    const char *token;
    int rc;
    if ((rc = cascade_config_bool(cfg, "orchestrator.debug.enabled", true, &out->debug_enabled, err,
                                  errlen)) ||
        (rc = cascade_config_bool(cfg, "orchestrator.debug.loopback", true, &out->debug_loopback,
                                  err, errlen)) ||
        (rc = cascade_config_string(cfg, "orchestrator.debug.token", "", &token, err, errlen)))
        return rc;
    for (const char *c = token; *c; c++)
        if (*c <= ' ' || *c > '~') {
            snprintf(err, errlen,
                     "%s: orchestrator.debug.token: expected printable ASCII without spaces",
                     cascade_config_source(cfg));
            return CASCADE_EINVAL;
        }
    if (!copy_str(out->debug_token, sizeof out->debug_token, token)) {
        snprintf(err, errlen, "%s: orchestrator.debug.token: at most %d bytes",
                 cascade_config_source(cfg), CASCADE_ORCH_TOKEN_MAX - 1);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_orch_config_parse(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                              size_t errlen)
{
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = parse_limits(cfg, out, err, errlen)) ||
        (rc = parse_channels(cfg, out, err, errlen)) ||
        (rc = parse_user_features(cfg, out, err, errlen)) ||
        (rc = parse_slots(cfg, out, err, errlen)) ||
        (rc = parse_hard_negatives(cfg, out, err, errlen)) ||
        (rc = parse_serve_log(cfg, out, err, errlen)) ||
        (rc = parse_items(cfg, out, err, errlen)) || (rc = parse_feedback(cfg, out, err, errlen)) ||
        (rc = parse_reconnect(cfg, out, err, errlen)) || (rc = parse_tls(cfg, out, err, errlen)) ||
        (rc = parse_debug(cfg, out, err, errlen)))
        return rc;
    if ((rc = parse_stage(cfg, "filter", 0, &out->filter, err, errlen)) ||
        (rc = parse_stage(cfg, "prerank", 300, &out->prerank, err, errlen)) ||
        (rc = parse_stage(cfg, "rank", 100, &out->rank, err, errlen)) ||
        (rc = parse_stage(cfg, "rerank", 0, &out->rerank, err, errlen)))
        return rc;
    return parse_reserves(cfg, out, err, errlen);
}

const struct cascade_orch_channel_cfg *
cascade_orch_config_channel(const struct cascade_orch_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_channels; i++)
        if (strcmp(c->channels[i].name, name) == 0)
            return &c->channels[i];
    return NULL;
}
