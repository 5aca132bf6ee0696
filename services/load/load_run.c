/* The load run: -c worker threads take call numbers from one counter. Closed
 * loop (no --rps): a worker sends its next call when the previous answer came.
 * Open loop (--rps R): call k is due at start + k/R; a worker sleeps until the
 * call is due and its latency is measured from that due time, so a call that
 * waited for a free worker (the server was slow) counts its wait: no
 * coordinated omission. With -c at least R x the worst latency the schedule
 * is kept; with fewer workers the queueing shows in the latencies. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "load.h"
#include "rpc.h"

#define NO_TIMEOUT_MS (3600 * 1000)

struct run {
    const struct cascade_load_opts *o;
    cascade_rpc_channel **channels;
    int n_channels;
    const ProtobufCFieldDescriptor *degraded_field; /* bool "degraded" of the answer, or NULL */
    atomic_uint_fast64_t next;
    uint64_t limit;            /* calls to run (UINT64_MAX with -z) */
    int64_t start_ns, stop_ns; /* monotonic; stop_ns = INT64_MAX without -z */
    int64_t start_wall_ns;
    double interval_ns; /* open loop: 1e9 / rps; 0 = closed loop */
};

struct worker {
    pthread_t thread;
    struct run *run;
    int index;
    struct cascade_load_result *results;
    size_t n, cap;
    uint64_t degraded;
    int64_t last_done_ns;
    int rc; /* CASCADE_ENOMEM when results could not be kept */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

static void seed_ctx(struct cascade_load_template_ctx *t, const struct cascade_load_opts *o,
                     int index)
{
    uint64_t seed = o->seed ? o->seed : (uint64_t)mono_ns();
    /* A distinct stream per worker: the worker's index mixed into the seed. */
    uint64_t x = seed ^ ((uint64_t)index << 32);
    cascade_rng_seed(&t->rng, cascade_rng_splitmix64(&x));
}

/* The request for call number k: the template expanded, parsed and mapped.
 * NULL with a message in err. */
static ProtobufCMessage *make_request(const struct cascade_load_opts *o,
                                      struct cascade_load_template_ctx *t, uint64_t k,
                                      cascade_arena *arena, char *err, size_t errlen)
{
    ProtobufCMessage *msg = NULL;
    t->request_number = k;
    t->method = &o->method;
    char *text = cascade_load_template_expand(o->data, t, err, errlen);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *json = json_loads(text, 0, &jerr);
    if (!json) {
        snprintf(err, errlen, "call data line %d column %d: %s (after templating: %.200s)",
                 jerr.line, jerr.column, jerr.text, text);
        goto out;
    }
    if (cascade_load_json_to_message(o->method.input, json, arena, &msg, err, errlen) != 0)
        msg = NULL;
out:
    json_decref(json);
    free(text);
    return msg;
}

static int keep(struct worker *w, const struct cascade_load_result *r)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct cascade_load_result *grown = realloc(w->results, cap * sizeof *grown);
        if (!grown)
            return CASCADE_ENOMEM;
        w->results = grown;
        w->cap = cap;
    }
    w->results[w->n++] = *r;
    return 0;
}

static char *error_text(grpc_status_code status, const char *message)
{
    char buf[1200];
    snprintf(buf, sizeof buf, "rpc error: code = %s desc = %s", cascade_load_status_name(status),
             message ? message : "");
    return strdup(buf);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    const struct cascade_load_opts *o = run->o;
    struct cascade_load_template_ctx t = {0};
    seed_ctx(&t, o, w->index);
    cascade_arena *arena = cascade_arena_create(0);
    if (!arena) {
        w->rc = CASCADE_ENOMEM;
        return NULL;
    }
    cascade_rpc_channel *ch = run->channels[w->index % run->n_channels];
    for (;;) {
        uint64_t k = atomic_fetch_add(&run->next, 1);
        if (k >= run->limit)
            break;
        int64_t due;
        if (run->interval_ns > 0) {
            due = run->start_ns + (int64_t)((double)k * run->interval_ns);
            if (due >= run->stop_ns)
                break;
            sleep_until(due);
        } else {
            due = mono_ns();
            if (due >= run->stop_ns)
                break;
        }
        struct cascade_load_result r = {.timestamp_ns = run->start_wall_ns + (due - run->start_ns)};
        char err[600];
        ProtobufCMessage *req = make_request(o, &t, k, arena, err, sizeof err);
        if (!req) {
            r.status = GRPC_STATUS_INVALID_ARGUMENT;
            r.error = error_text(r.status, err);
            r.latency_ns = mono_ns() - due;
        } else {
            int64_t timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : NO_TIMEOUT_MS;
            struct cascade_rpc_call call = {
                .channel = ch,
                .method = o->method.path,
                .request = req,
                .response_type = o->method.output,
                .deadline_ms = cascade_now_ms() + timeout_ms,
            };
            cascade_rpc_call_unary(&call, arena);
            r.latency_ns = mono_ns() - due;
            r.status = call.status;
            if (call.status != GRPC_STATUS_OK)
                r.error = error_text(call.status, call.status_message);
            else if (run->degraded_field && call.response)
                r.degraded = *(const protobuf_c_boolean *)((const char *)call.response +
                                                           run->degraded_field->offset) != 0;
        }
        w->degraded += r.degraded;
        w->last_done_ns = due + r.latency_ns;
        if (keep(w, &r) != 0) {
            free(r.error);
            w->rc = CASCADE_ENOMEM;
            break;
        }
        cascade_arena_reset(arena);
    }
    cascade_arena_destroy(arena);
    return NULL;
}

static int by_timestamp(const void *a, const void *b)
{
    const struct cascade_load_result *x = a, *y = b;
    return (x->timestamp_ns > y->timestamp_ns) - (x->timestamp_ns < y->timestamp_ns);
}

/* The answer's bool field "degraded" (RecommendResponse has one), or NULL. */
static const ProtobufCFieldDescriptor *degraded_field(const ProtobufCMessageDescriptor *d)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(d, "degraded");
    if (f && f->type == PROTOBUF_C_TYPE_BOOL && f->label != PROTOBUF_C_LABEL_REPEATED)
        return f;
    return NULL;
}

static int open_channels(struct run *run, char *err, size_t errlen)
{
    const struct cascade_load_opts *o = run->o;
    struct cascade_rpc_channel_opts copts = {.max_message_bytes = 64u << 20,
                                             .own_connection = o->connections > 1};
    if (!o->insecure)
        cascade_rpc_channel_opts_tls_from_env(&copts);
    if (o->cacert)
        copts.tls_ca_file = o->cacert;
    if (o->cert)
        copts.tls_cert_file = o->cert;
    if (o->key)
        copts.tls_key_file = o->key;
    run->channels = calloc((size_t)o->connections, sizeof *run->channels);
    if (!run->channels) {
        snprintf(err, errlen, "out of memory");
        return CASCADE_ENOMEM;
    }
    for (int i = 0; i < o->connections; i++) {
        char why[600] = "out of memory";
        run->channels[i] = cascade_rpc_channel_create_err(o->target, &copts, why, sizeof why);
        run->n_channels = i + (run->channels[i] != NULL);
        if (!run->channels[i]) {
            snprintf(err, errlen, "%s: cannot create a channel: %s", o->target, why);
            return CASCADE_EINVAL;
        }
        if (cascade_rpc_channel_auth_from_env(run->channels[i], why, sizeof why) != 0) {
            snprintf(err, errlen, "%s", why);
            return CASCADE_EINVAL;
        }
    }
    return 0;
}

int cascade_load_run(const struct cascade_load_opts *o, struct cascade_load_report **out, char *err,
                     size_t errlen)
{
    int rc = CASCADE_ENOMEM;
    struct run run = {.o = o};
    struct worker *workers = NULL;
    struct cascade_load_report *rep = NULL;
    int started = 0;
    *out = NULL;
    /* The data must make a request before any call is sent (call 0 as a check). */
    cascade_arena *arena = cascade_arena_create(0);
    struct cascade_load_template_ctx t = {0};
    seed_ctx(&t, o, 0);
    if (!arena) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    char why[600];
    if (!make_request(o, &t, 0, arena, why, sizeof why)) {
        snprintf(err, errlen, "-d: %s", why);
        rc = CASCADE_EINVAL;
        goto out;
    }
    rc = open_channels(&run, err, errlen);
    if (rc != 0)
        goto out;
    rc = CASCADE_ENOMEM;
    run.degraded_field = degraded_field(o->method.output);
    run.limit = o->duration_ns > 0 ? UINT64_MAX : o->total;
    run.interval_ns = o->rps > 0 ? 1e9 / o->rps : 0;
    workers = calloc((size_t)o->concurrency, sizeof *workers);
    rep = calloc(1, sizeof *rep);
    if (!workers || !rep) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    run.start_wall_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
    run.start_ns = mono_ns();
    run.stop_ns = o->duration_ns > 0 ? run.start_ns + o->duration_ns : INT64_MAX;
    for (; started < o->concurrency; started++) {
        workers[started] = (struct worker){.run = &run, .index = started};
        if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]) != 0) {
            /* Stop the others: no further call numbers are handed out. */
            atomic_store(&run.next, UINT64_MAX / 2);
            snprintf(err, errlen, "cannot start worker thread %d", started);
            rc = CASCADE_ENOMEM;
            break;
        }
    }
    int64_t last = run.start_ns;
    size_t total = 0;
    bool failed = started < o->concurrency;
    for (int i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        total += workers[i].n;
        if (workers[i].last_done_ns > last)
            last = workers[i].last_done_ns;
        if (workers[i].rc != 0 && !failed) {
            snprintf(err, errlen, "out of memory keeping the results");
            failed = true;
        }
    }
    if (failed)
        goto out;
    rep->results = malloc((total ? total : 1) * sizeof *rep->results);
    if (!rep->results) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < started; i++) {
        memcpy(rep->results + rep->count, workers[i].results, workers[i].n * sizeof *rep->results);
        rep->count += workers[i].n;
        rep->degraded += workers[i].degraded;
        workers[i].n = 0; /* the errors now belong to the report */
    }
    qsort(rep->results, rep->count, sizeof *rep->results, by_timestamp);
    rep->opts = o;
    rep->date_s = wall.tv_sec;
    rep->total_ns = last - run.start_ns;
    rep->end_reason = o->duration_ns > 0 ? "timeout" : "normal";
    *out = rep;
    rep = NULL;
    rc = 0;
out:
    for (int i = 0; workers && i < started; i++) {
        for (size_t j = 0; j < workers[i].n; j++)
            free(workers[i].results[j].error);
        free(workers[i].results);
    }
    free(workers);
    cascade_load_report_destroy(rep);
    for (int i = 0; i < run.n_channels; i++)
        cascade_rpc_channel_destroy(run.channels[i]);
    free(run.channels);
    cascade_arena_destroy(arena);
    return rc;
}

void cascade_load_report_destroy(struct cascade_load_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->results[i].error);
    free(r->results);
    free(r);
}
