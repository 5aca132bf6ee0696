/* Feedback events: the bounds every field of an incoming Event must meet
 * (docs/orchestrator.md, "Feedback") and the event id that makes a retried
 * Feedback call record each event once (docs/redis-keys.md). Pure functions;
 * thread-safe. */
#ifndef CASCADE_ORCH_FEEDBACK_EVENT_H
#define CASCADE_ORCH_FEEDBACK_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "cascade/v1/common.pb-c.h"
#include "request.h"

/* Longest Event.request_id accepted, in bytes: a Recommend request id
 * ([A-Za-z0-9._:-], as the orchestrator issues and accepts them). */
#define CASCADE_FEEDBACK_REQUEST_ID_MAX CASCADE_REQUEST_ID_MAX
/* Largest Event.value accepted (seconds played; about 11.6 days). */
#define CASCADE_FEEDBACK_VALUE_MAX 1e6
/* Event.time_s, when set, must lie within this many seconds before the
 * server's clock ... */
#define CASCADE_FEEDBACK_PAST_S (366LL * 24 * 3600)
/* ... and at most this many seconds after it (client clock skew). */
#define CASCADE_FEEDBACK_FUTURE_S 300LL
/* Hex digits of an event id (128 bits). */
#define CASCADE_FEEDBACK_EVENT_ID_LEN 32

/* Check events[index] against the bounds: present; user_id 1..64 bytes of
 * valid UTF-8 without control characters; item_id non-zero; a known type;
 * value finite and within [0, CASCADE_FEEDBACK_VALUE_MAX]; time_s 0 (= now)
 * or within [now_s - CASCADE_FEEDBACK_PAST_S, now_s + CASCADE_FEEDBACK_FUTURE_S];
 * request_id empty or 1..64 characters of [A-Za-z0-9._:-]. Returns 0, or
 * CASCADE_EINVAL with a message naming the field and index in err
 * ("events[3].request_id is longer than 64 bytes"). */
int cascade_feedback_check_event(const Cascade__V1__Event *e, size_t index, int64_t now_s,
                                 char *err, size_t errlen);

/* The id of an event that passed cascade_feedback_check_event: the
 * lower-case hex of a 128-bit hash of its fields as the client sent them
 * (user_id, item_id, type, value, time_s, request_id; time_s 0 stays 0), so
 * the same event sent twice gets the same id. (Event has no client id
 * field.) out holds CASCADE_FEEDBACK_EVENT_ID_LEN + 1 bytes. */
void cascade_feedback_event_id(const Cascade__V1__Event *e, char *out);

#endif
