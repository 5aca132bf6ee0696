/* Key tracker (key_tracker.h): one thread per tracker runs connect → track →
 * read messages, and on any failure tells the owner tracking is off, drops
 * both connections and tries again after a growing pause. */
#include "key_tracker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "log.h"

#define TRACKER_CHANNEL "__redis__:invalidate"
#define TRACKER_POLL_MS 100  /* how long a read waits: bounds how long stop takes */
#define TRACKER_PING_MS 1000 /* the tracking connection is checked this often */
#define TRACKER_RETRY_MIN_MS 100
#define TRACKER_RETRY_MAX_MS 5000
#define TRACKER_KEYS_MAX 256 /* keys handed to the owner per call */

struct cascade_key_tracker {
    struct cascade_key_tracker_events ev;
    cascade_redis *sub;   /* SUBSCRIBEd: receives the invalidation messages */
    cascade_redis *track; /* issued CLIENT TRACKING, redirected to sub */
    char prefix[256];
    char name[96];
    pthread_t thread;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;  /* signalled on every change of them */
    bool stop, on;
    struct cascade_key_tracker_counts counts;
};

static void tracker_set(cascade_key_tracker *t, bool on, uint64_t add_messages)
{
    pthread_mutex_lock(&t->mu);
    if (on && !t->on)
        t->counts.sessions++;
    t->on = on;
    t->counts.messages += add_messages;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static bool tracker_stopping(cascade_key_tracker *t)
{
    pthread_mutex_lock(&t->mu);
    bool stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait ms, or less when stopped. */
static void tracker_pause(cascade_key_tracker *t, int ms)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&t->mu);
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0) {
    }
    pthread_mutex_unlock(&t->mu);
}

/* Connect both, subscribe, then turn tracking on. Returns 0 or the failure
 * (the handle's error says why; *failed names it). */
static int tracker_connect(cascade_key_tracker *t, cascade_redis **failed)
{
    redisReply *id = NULL;
    int rc;
    cascade_redis_disconnect(t->sub);
    cascade_redis_disconnect(t->track);
    *failed = t->sub;
    if ((rc = cascade_redis_command(t->sub, &id, "CLIENT ID")) != 0)
        return rc;
    long long sub_id = id->type == REDIS_REPLY_INTEGER ? id->integer : -1;
    freeReplyObject(id);
    if (sub_id < 0) {
        cascade_redis__set_error(t->sub, "CLIENT ID: not an integer reply");
        return CASCADE_EIO;
    }
    redisReply *ok = NULL;
    rc = cascade_redis_command(t->sub, &ok, "SUBSCRIBE %s", TRACKER_CHANNEL);
    freeReplyObject(ok);
    if (rc != 0)
        return rc;
    *failed = t->track;
    ok = NULL;
    rc = cascade_redis_command(t->track, &ok, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %s",
                               sub_id, t->prefix);
    freeReplyObject(ok);
    return rc;
}

/* Hand an invalidation message to the owner. Other messages (the
 * subscription's own confirmations) are ignored. */
static void tracker_dispatch(cascade_key_tracker *t, const redisReply *msg)
{
    if (msg->type != REDIS_REPLY_ARRAY || msg->elements != 3 ||
        msg->element[0]->type != REDIS_REPLY_STRING || strcmp(msg->element[0]->str, "message") != 0)
        return;
    const redisReply *keys = msg->element[2];
    if (keys->type != REDIS_REPLY_ARRAY) {
        t->ev.flush(t->ev.ctx); /* nil: the whole database was flushed */
        tracker_set(t, true, 1);
        return;
    }
    const char *names[TRACKER_KEYS_MAX];
    size_t lens[TRACKER_KEYS_MAX], n = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        if (keys->element[i]->type != REDIS_REPLY_STRING)
            continue;
        names[n] = keys->element[i]->str;
        lens[n++] = keys->element[i]->len;
        if (n == TRACKER_KEYS_MAX) {
            t->ev.keys(t->ev.ctx, names, lens, n);
            n = 0;
        }
    }
    if (n > 0)
        t->ev.keys(t->ev.ctx, names, lens, n);
    tracker_set(t, true, 1);
}

/* Read messages until a connection fails or the tracker stops; returns the
 * handle that failed (NULL: stopped). */
static cascade_redis *tracker_listen(cascade_key_tracker *t)
{
    int64_t next_ping = cascade_now_ms() + TRACKER_PING_MS;
    while (!tracker_stopping(t)) {
        redisReply *msg = NULL;
        int rc = cascade_redis_read_message(t->sub, &msg, TRACKER_POLL_MS);
        if (rc == 0) {
            tracker_dispatch(t, msg);
            freeReplyObject(msg);
        } else if (rc != CASCADE_ETIMEDOUT) {
            return t->sub;
        }
        if (cascade_now_ms() >= next_ping) {
            redisReply *pong = NULL;
            int ping = cascade_redis_command(t->track, &pong, "PING");
            freeReplyObject(pong);
            if (ping != 0)
                return t->track;
            next_ping = cascade_now_ms() + TRACKER_PING_MS;
        }
    }
    return NULL;
}

static void *tracker_main(void *arg)
{
    cascade_key_tracker *t = arg;
    int retry_ms = TRACKER_RETRY_MIN_MS;
    bool warned = false; /* the current failure streak was logged */
    while (!tracker_stopping(t)) {
        cascade_redis *failed = NULL;
        if (tracker_connect(t, &failed) != 0) {
            if (!warned)
                CASCADE_WARN(NULL, "%s: cannot track changes (%s); retrying", t->name,
                             cascade_redis_error(failed));
            warned = true;
            tracker_pause(t, retry_ms);
            retry_ms = retry_ms * 2 > TRACKER_RETRY_MAX_MS ? TRACKER_RETRY_MAX_MS : retry_ms * 2;
            continue;
        }
        t->ev.tracking(t->ev.ctx, true);
        tracker_set(t, true, 0);
        CASCADE_INFO(NULL, "%s: tracking changes to %s* on redis %s", t->name, t->prefix,
                     cascade_redis_addr(t->sub));
        warned = false;
        retry_ms = TRACKER_RETRY_MIN_MS;
        failed = tracker_listen(t);
        if (!failed)
            break; /* stopped: the owner is going away */
        t->ev.tracking(t->ev.ctx, false);
        tracker_set(t, false, 0);
        CASCADE_WARN(NULL, "%s: tracking lost (%s); reconnecting", t->name,
                     cascade_redis_error(failed));
        warned = true;
    }
    return NULL;
}

cascade_key_tracker *cascade_key_tracker_start(const struct cascade_redis_opts *opts,
                                               const char *prefix, const char *name,
                                               const struct cascade_key_tracker_events *events,
                                               char *err, size_t errlen)
{
    cascade_key_tracker *t = calloc(1, sizeof(*t));
    pthread_condattr_t attr;
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (strlen(prefix) >= sizeof t->prefix) {
        snprintf(err, errlen, "%s: key prefix longer than %zu characters", name,
                 sizeof t->prefix - 1);
        free(t);
        return NULL;
    }
    t->ev = *events;
    snprintf(t->prefix, sizeof t->prefix, "%s", prefix);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->sub = cascade_redis_create(opts);
    t->track = cascade_redis_create(opts);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (!t->sub || !t->track) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto fail;
    }
    if (pthread_create(&t->thread, NULL, tracker_main, t) != 0) {
        snprintf(err, errlen, "%s: cannot start the tracking thread", name);
        goto fail;
    }
    return t;
fail:
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    cascade_redis_destroy(t->track);
    cascade_redis_destroy(t->sub);
    free(t);
    return NULL;
}

void cascade_key_tracker_stop(cascade_key_tracker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    cascade_redis_destroy(t->track);
    cascade_redis_destroy(t->sub);
    free(t);
}

bool cascade_key_tracker_on(cascade_key_tracker *t)
{
    pthread_mutex_lock(&t->mu);
    bool on = t->on;
    pthread_mutex_unlock(&t->mu);
    return on;
}

struct cascade_key_tracker_counts cascade_key_tracker_counts(cascade_key_tracker *t)
{
    pthread_mutex_lock(&t->mu);
    struct cascade_key_tracker_counts n = t->counts;
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* Under t->mu. */
static bool tracker_reached(const cascade_key_tracker *t, bool on,
                            const struct cascade_key_tracker_counts *at_least)
{
    return t->on == on && (!at_least || (t->counts.sessions >= at_least->sessions &&
                                         t->counts.messages >= at_least->messages));
}

bool cascade_key_tracker_wait(cascade_key_tracker *t, bool on,
                              const struct cascade_key_tracker_counts *at_least, int timeout_ms)
{
    struct timespec until = deadline_in(timeout_ms);
    pthread_mutex_lock(&t->mu);
    while (!tracker_reached(t, on, at_least) &&
           pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0) {
    }
    bool reached = tracker_reached(t, on, at_least);
    pthread_mutex_unlock(&t->mu);
    return reached;
}
