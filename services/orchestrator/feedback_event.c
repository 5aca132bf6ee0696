/* Feedback event bounds and ids (feedback_event.h). */
#include "feedback_event.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "events.h"
#include "hash.h"
#include "request.h"

/* Seed of the event id hash; changing it changes every id (and so forgets
 * the dedupe marks in Redis for one window). */
#define EVENT_ID_SEED 0x66656564626b3031ULL /* "feedbk01" */

/* user_id (its length and UTF-8 checked by cascade_request_check_user_id):
 * no ASCII control characters, since it becomes part of Redis keys and
 * stream entries. */
static int check_user_text(const char *user_id, size_t index, char *err, size_t errlen)
{
    for (size_t i = 0; user_id[i]; i++) {
        unsigned char c = (unsigned char)user_id[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(err, errlen, "events[%zu].user_id has a control character at byte %zu", index,
                     i);
            return CASCADE_EINVAL;
        }
    }
    return 0;
}

/* Empty, or a request id by the one rule every service applies
 * (cascade_request_id_valid: [A-Za-z0-9._:-]{1,64}). */
static int check_request_id(const char *rid, size_t index, char *err, size_t errlen)
{
    if (rid == NULL || rid[0] == '\0' || cascade_request_id_valid(rid))
        return 0;
    snprintf(err, errlen, "events[%zu].request_id must be at most %d characters of [A-Za-z0-9._:-]",
             index, CASCADE_FEEDBACK_REQUEST_ID_MAX);
    return CASCADE_EINVAL;
}

static int check_value_and_time(const Cascade__V1__Event *e, size_t index, int64_t now_s, char *err,
                                size_t errlen)
{
    if (!isfinite(e->value) || e->value < 0.0f || e->value > CASCADE_FEEDBACK_VALUE_MAX) {
        snprintf(err, errlen, "events[%zu].value %g is outside [0, %g]", index, (double)e->value,
                 CASCADE_FEEDBACK_VALUE_MAX);
        return CASCADE_EINVAL;
    }
    if (e->time_s != 0 && (e->time_s < now_s - CASCADE_FEEDBACK_PAST_S ||
                           e->time_s > now_s + CASCADE_FEEDBACK_FUTURE_S)) {
        snprintf(err, errlen,
                 "events[%zu].time_s %lld is outside [%lld, %lld] (0 = now; at most %lld days "
                 "old, %lld s ahead)",
                 index, (long long)e->time_s, (long long)(now_s - CASCADE_FEEDBACK_PAST_S),
                 (long long)(now_s + CASCADE_FEEDBACK_FUTURE_S),
                 (long long)(CASCADE_FEEDBACK_PAST_S / 86400),
                 (long long)CASCADE_FEEDBACK_FUTURE_S);
        return CASCADE_EINVAL;
    }
    return 0;
}

int cascade_feedback_check_event(const Cascade__V1__Event *e, size_t index, int64_t now_s,
                                 char *err, size_t errlen)
{
    char field[48];
    int rc;
    if (e == NULL) {
        snprintf(err, errlen, "events[%zu] is missing", index);
        return CASCADE_EINVAL;
    }
    snprintf(field, sizeof field, "events[%zu].user_id", index);
    if ((rc = cascade_request_check_user_id(field, e->user_id, err, errlen)) ||
        (rc = check_user_text(e->user_id, index, err, errlen)))
        return rc;
    if (e->item_id == 0) {
        snprintf(err, errlen, "events[%zu].item_id is 0", index);
        return CASCADE_EINVAL;
    }
    if (cascade_event_type_name((uint32_t)e->type) == NULL) {
        snprintf(err, errlen, "events[%zu].type: unknown event type %d (expected 1..%d: %s)", index,
                 (int)e->type, CASCADE_EV_MAX, CASCADE_EV_NAMES);
        return CASCADE_EINVAL;
    }
    if ((rc = check_value_and_time(e, index, now_s, err, errlen)))
        return rc;
    return check_request_id(e->request_id, index, err, errlen);
}

/* Append len bytes to buf at *at (the caller sized buf for every field). */
static void put(unsigned char *buf, size_t *at, const void *data, size_t len)
{
    memcpy(buf + *at, data, len);
    *at += len;
}

void cascade_feedback_event_id(const Cascade__V1__Event *e, char *out)
{
    /* Length-prefixed fields, so ("ab", "c") and ("a", "bc") differ. Fixed
     * widths in host order: ids are compared within one deployment. */
    unsigned char buf[2 * sizeof(uint32_t) + CASCADE_USER_ID_MAX + CASCADE_FEEDBACK_REQUEST_ID_MAX +
                      sizeof(uint64_t) + sizeof(int32_t) + sizeof(float) + sizeof(int64_t)];
    size_t at = 0;
    const char *rid = e->request_id ? e->request_id : "";
    uint32_t user_len = (uint32_t)strlen(e->user_id), rid_len = (uint32_t)strlen(rid);
    int32_t type = (int32_t)e->type;
    float value = e->value == 0.0f ? 0.0f : e->value; /* -0 and 0 are one value */
    put(buf, &at, &user_len, sizeof user_len);
    put(buf, &at, e->user_id, user_len);
    put(buf, &at, &e->item_id, sizeof e->item_id);
    put(buf, &at, &type, sizeof type);
    put(buf, &at, &value, sizeof value);
    put(buf, &at, &e->time_s, sizeof e->time_s);
    put(buf, &at, &rid_len, sizeof rid_len);
    put(buf, &at, rid, rid_len);
    uint64_t h1, h2;
    cascade_hash128(buf, at, EVENT_ID_SEED, &h1, &h2);
    snprintf(out, CASCADE_FEEDBACK_EVENT_ID_LEN + 1, "%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}
