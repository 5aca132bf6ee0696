/* The gate record beside each model file (gate_record.h): JSON through
 * jansson, unknown values as null. */
#include "gate_record.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

/* A finite number, or null for NAN / infinities (JSON has neither). */
static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *record_json(const struct cascade_gate_record *r)
{
    json_t *current = json_null();
    if (r->has_current)
        current = json_pack("{s:s, s:o}", "version", r->current_version, "value",
                            number_or_null(r->current_value));
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:s, "
                     "s:I}",
                     "model", r->model, "version", r->version, "kind", r->kind, "metric", r->metric,
                     "higher_is_better", r->higher_is_better, "holdout", (json_int_t)r->holdout,
                     "value", number_or_null(r->value), "floor", number_or_null(r->floor),
                     "tolerance", number_or_null(r->tolerance), "current", current, "current_note",
                     r->current_note, "decision", r->decision, "reason", r->reason, "message",
                     r->message, "decided_at", (json_int_t)r->decided_at);
}

int cascade_gate_record_write(const char *path, const struct cascade_gate_record *r, char *err,
                              size_t errlen)
{
    char tmp[4200];
    int rc = 0;
    json_t *doc = record_json(r);
    if (!doc) {
        snprintf(err, errlen, "%s: out of memory", path);
        return CASCADE_ENOMEM;
    }
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%.200s...: path too long", path);
        rc = CASCADE_EINVAL;
        goto out;
    }
    if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(8)) != 0 ||
        rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write the gate record: %s", path, strerror(errno));
        unlink(tmp);
        rc = CASCADE_EIO;
    }
out:
    json_decref(doc);
    return rc;
}

static void copy_string(json_t *doc, const char *key, char *dst, size_t len)
{
    const char *s = json_string_value(json_object_get(doc, key));
    snprintf(dst, len, "%s", s ? s : "");
}

static double get_number(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int cascade_gate_record_read(const char *path, struct cascade_gate_record *r, char *err,
                             size_t errlen)
{
    json_error_t je;
    memset(r, 0, sizeof *r);
    if (access(path, F_OK) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return CASCADE_ENOTFOUND;
    }
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc || !json_is_object(doc) || !json_is_string(json_object_get(doc, "decision")) ||
        !json_is_string(json_object_get(doc, "metric"))) {
        if (doc)
            snprintf(err, errlen, "%s: not a gate record (no decision or metric)", path);
        else
            snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        json_decref(doc);
        return CASCADE_EFORMAT;
    }
    copy_string(doc, "model", r->model, sizeof r->model);
    copy_string(doc, "version", r->version, sizeof r->version);
    copy_string(doc, "kind", r->kind, sizeof r->kind);
    copy_string(doc, "metric", r->metric, sizeof r->metric);
    copy_string(doc, "current_note", r->current_note, sizeof r->current_note);
    copy_string(doc, "decision", r->decision, sizeof r->decision);
    copy_string(doc, "reason", r->reason, sizeof r->reason);
    copy_string(doc, "message", r->message, sizeof r->message);
    r->higher_is_better = json_is_true(json_object_get(doc, "higher_is_better"));
    r->holdout = (size_t)json_integer_value(json_object_get(doc, "holdout"));
    r->decided_at = (long long)json_integer_value(json_object_get(doc, "decided_at"));
    r->value = get_number(doc, "value");
    r->floor = get_number(doc, "floor");
    r->tolerance = get_number(doc, "tolerance");
    json_t *cur = json_object_get(doc, "current");
    r->has_current = json_is_object(cur);
    r->current_value = r->has_current ? get_number(cur, "value") : NAN;
    if (r->has_current)
        copy_string(cur, "version", r->current_version, sizeof r->current_version);
    json_decref(doc);
    return 0;
}

void cascade_gate_record_describe(const char *model_path, char *buf, size_t len)
{
    char path[4200], err[256];
    struct cascade_gate_record r;
    snprintf(path, sizeof path, "%s%s", model_path, CASCADE_GATE_RECORD_SUFFIX);
    int rc = cascade_gate_record_read(path, &r, err, sizeof err);
    if (rc == CASCADE_ENOTFOUND) {
        snprintf(buf, len, "no gate record");
        return;
    }
    if (rc != 0) {
        snprintf(buf, len, "unreadable gate record (%s)", err);
        return;
    }
    char current[320];
    if (r.has_current)
        snprintf(current, sizeof current, "published %s: %.4f", r.current_version, r.current_value);
    else
        snprintf(current, sizeof current, "%s", r.current_note[0] ? r.current_note : "none");
    snprintf(buf, len, "gate %s: %s %.4f (floor %.4f, %zu held out), previous %s", r.decision,
             r.metric, r.value, r.floor, r.holdout, current);
}
