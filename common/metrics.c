/* Prometheus metrics: families of counters, gauges and histograms keyed by
 * label values, lock-free updates (doubles kept as C11 atomic bit patterns),
 * the text exposition format, and a libmicrohttpd endpoint. See metrics.h. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "error.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"

#define MAX_LABELS 8
#define MAX_BUCKETS 64
#define INITIAL_TABLE_SIZE 16
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* HTTP endpoint limits. Idle connections must not keep a scrape out: there
 * is room for far more connections than scrapers need, one peer address may
 * hold only a quarter of them, and a connection idle for HTTP_IDLE_TIMEOUT_S
 * is closed. (With 64 slots and a 10 s timeout, 64 idle connections blocked
 * every scrape for up to 10 s.) */
#define HTTP_CONNECTION_LIMIT 512u
#define HTTP_PER_IP_CONNECTION_LIMIT 128u
#define HTTP_IDLE_TIMEOUT_S 5u

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* Latency buckets in seconds: 100 µs to 10 s, roughly 1-2.5-5 steps. */
static const double default_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

/* One series. Allocated in one block: the struct, the histogram bucket
 * counts, the label value pointers, then the label value strings. */
struct cascade_metric {
    cascade_metric_family *family;
    struct cascade_metric *hash_next;  /* chain in family->table */
    struct cascade_metric *order_next; /* creation order, for rendering */
    uint64_t hash;
    const char **label_values;
    _Atomic uint64_t value;    /* counter/gauge value or histogram sum, as double bits */
    _Atomic uint64_t counts[]; /* histogram: per-bucket counts (not cumulative), last = +Inf */
};

struct cascade_metric_family {
    struct cascade_metric_family *next;
    enum metric_kind kind;
    char *name;
    char *help;
    char *label_buf; /* the label names, NUL-separated; label_names point into it */
    const char *label_names[MAX_LABELS];
    size_t n_labels;
    double buckets[MAX_BUCKETS];
    size_t n_buckets;
    pthread_mutex_t mu; /* guards table, n_series and the order list */
    struct cascade_metric **table;
    size_t table_size;
    size_t n_series;
    struct cascade_metric *first, *last;
};

struct cascade_metrics {
    pthread_mutex_t mu; /* guards the family list; taken before a family's mu */
    cascade_metric_family *first, *last;
    struct MHD_Daemon *daemon;
    int port; /* bound by cascade_metrics_serve; 0 = not served */
};

/* ----------------------------------------------------------- double atomics */

static double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

static void atomic_add_double(_Atomic uint64_t *target, double v)
{
    uint64_t old = atomic_load_explicit(target, memory_order_relaxed);
    uint64_t next;
    do {
        next = double_to_bits(bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(target, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

/* ------------------------------------------------------------ registration */

static bool valid_metric_name(const char *s)
{
    if (!s || !(s[0] == '_' || s[0] == ':' || (s[0] >= 'a' && s[0] <= 'z') ||
                (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *p = s + 1; *p; p++) {
        if (!(*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s[0] || strchr(s, ':') || !valid_metric_name(s))
        return false;
    return strcmp(s, "le") != 0 && strncmp(s, "__", 2) != 0;
}

/* Split "a, b" into f->label_buf / f->label_names. Returns 0 or CASCADE_EINVAL
 * with a message in why. */
static int parse_label_names(cascade_metric_family *f, const char *spec, char *why, size_t len)
{
    if (!spec || !spec[0])
        return 0;
    f->label_buf = strdup(spec);
    if (!f->label_buf) {
        snprintf(why, len, "out of memory");
        return CASCADE_ENOMEM;
    }
    char *save = NULL;
    for (char *tok = strtok_r(f->label_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (f->n_labels == MAX_LABELS) {
            snprintf(why, len, "more than %d labels", MAX_LABELS);
            return CASCADE_EINVAL;
        }
        if (!valid_label_name(tok)) {
            snprintf(why, len, "bad label name \"%s\" (want [a-zA-Z_][a-zA-Z0-9_]*, not le or __*)",
                     tok);
            return CASCADE_EINVAL;
        }
        for (size_t i = 0; i < f->n_labels; i++) {
            if (strcmp(f->label_names[i], tok) == 0) {
                snprintf(why, len, "label \"%s\" given twice", tok);
                return CASCADE_EINVAL;
            }
        }
        f->label_names[f->n_labels++] = tok;
    }
    return 0;
}

static int set_buckets(cascade_metric_family *f, const double *buckets, size_t n, char *why,
                       size_t len)
{
    if (!buckets) {
        buckets = default_buckets;
        n = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    if (n == 0 || n > MAX_BUCKETS) {
        snprintf(why, len, "%zu buckets (want 1..%d)", n, MAX_BUCKETS);
        return CASCADE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
            snprintf(why, len, "bucket bounds must be finite and strictly ascending");
            return CASCADE_EINVAL;
        }
        f->buckets[i] = buckets[i];
    }
    f->n_buckets = n;
    return 0;
}

static void family_free(cascade_metric_family *f)
{
    if (!f)
        return;
    for (struct cascade_metric *s = f->first, *next; s; s = next) {
        next = s->order_next;
        free(s);
    }
    pthread_mutex_destroy(&f->mu);
    free(f->table);
    free(f->label_buf);
    free(f->help);
    free(f->name);
    free(f);
}

static cascade_metric_family *family_new(enum metric_kind kind, const char *name, const char *help,
                                         const char *label_names, const double *buckets,
                                         size_t n_buckets, char *why, size_t len)
{
    cascade_metric_family *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->table_size = INITIAL_TABLE_SIZE;
    f->table = calloc(f->table_size, sizeof(*f->table));
    if (!f->name || !f->help || !f->table) {
        snprintf(why, len, "out of memory");
        goto fail;
    }
    if (parse_label_names(f, label_names, why, len) != 0)
        goto fail;
    if (kind == KIND_HISTOGRAM && set_buckets(f, buckets, n_buckets, why, len) != 0)
        goto fail;
    return f;
fail:
    family_free(f);
    return NULL;
}

/* Same type, labels and buckets: re-registration returns the existing family. */
static bool family_matches(const cascade_metric_family *a, const cascade_metric_family *b)
{
    if (a->kind != b->kind || a->n_labels != b->n_labels || a->n_buckets != b->n_buckets)
        return false;
    for (size_t i = 0; i < a->n_labels; i++) {
        if (strcmp(a->label_names[i], b->label_names[i]) != 0)
            return false;
    }
    for (size_t i = 0; i < a->n_buckets; i++) {
        if (a->buckets[i] != b->buckets[i])
            return false;
    }
    return true;
}

static cascade_metric_family *register_family(cascade_metrics *m, enum metric_kind kind,
                                              const char *name, const char *help,
                                              const char *label_names, const double *buckets,
                                              size_t n_buckets)
{
    char why[256] = "";
    cascade_metric_family *f = NULL, *result = NULL;
    if (!m)
        return NULL;
    if (!valid_metric_name(name)) {
        CASCADE_ERROR(NULL, "metrics: bad metric name \"%s\" (want [a-zA-Z_:][a-zA-Z0-9_:]*)",
                      name ? name : "(null)");
        return NULL;
    }
    f = family_new(kind, name, help, label_names, buckets, n_buckets, why, sizeof(why));
    if (!f) {
        CASCADE_ERROR(NULL, "metrics: %s: %s", name, why);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    for (cascade_metric_family *g = m->first; g; g = g->next) {
        if (strcmp(g->name, name) != 0)
            continue;
        if (family_matches(g, f))
            result = g;
        else if (g->kind != kind)
            CASCADE_ERROR(NULL, "metrics: %s is already registered as a %s, not a %s", name,
                          kind_names[g->kind], kind_names[kind]);
        else
            CASCADE_ERROR(NULL, "metrics: %s is already registered with other labels or buckets",
                          name);
        pthread_mutex_unlock(&m->mu);
        family_free(f);
        return result;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->mu);
    /* A family without labels has exactly one series: create it now, so it
     * renders (as 0) before its first update. */
    if (f->n_labels == 0)
        cascade_metric_get(f, NULL);
    return f;
}

cascade_metric_family *cascade_metrics_counter(cascade_metrics *m, const char *name,
                                               const char *help, const char *label_names)
{
    return register_family(m, KIND_COUNTER, name, help, label_names, NULL, 0);
}

cascade_metric_family *cascade_metrics_gauge(cascade_metrics *m, const char *name, const char *help,
                                             const char *label_names)
{
    return register_family(m, KIND_GAUGE, name, help, label_names, NULL, 0);
}

cascade_metric_family *cascade_metrics_histogram(cascade_metrics *m, const char *name,
                                                 const char *help, const char *label_names,
                                                 const double *buckets, size_t n_buckets)
{
    return register_family(m, KIND_HISTOGRAM, name, help, label_names, buckets, n_buckets);
}

/* ------------------------------------------------------------------ series */

static const char *label_value(const char *const *values, size_t i)
{
    return values && values[i] ? values[i] : "";
}

static uint64_t labels_hash(const cascade_metric_family *f, const char *const *values)
{
    uint64_t h = f->n_labels;
    for (size_t i = 0; i < f->n_labels; i++) {
        const char *v = label_value(values, i);
        h = cascade_hash64(v, strlen(v), h + i);
    }
    return h;
}

static bool labels_equal(const cascade_metric_family *f, const struct cascade_metric *s,
                         const char *const *values)
{
    for (size_t i = 0; i < f->n_labels; i++) {
        if (strcmp(s->label_values[i], label_value(values, i)) != 0)
            return false;
    }
    return true;
}

static struct cascade_metric *series_new(cascade_metric_family *f, const char *const *values,
                                         uint64_t hash)
{
    size_t n_counts = f->kind == KIND_HISTOGRAM ? f->n_buckets + 1 : 0;
    size_t size = sizeof(struct cascade_metric) + n_counts * sizeof(_Atomic uint64_t) +
                  f->n_labels * sizeof(char *);
    for (size_t i = 0; i < f->n_labels; i++)
        size += strlen(label_value(values, i)) + 1;
    struct cascade_metric *s = calloc(1, size);
    if (!s)
        return NULL;
    s->family = f;
    s->hash = hash;
    atomic_init(&s->value, double_to_bits(0.0));
    for (size_t i = 0; i < n_counts; i++)
        atomic_init(&s->counts[i], 0);
    s->label_values = (const char **)(void *)&s->counts[n_counts];
    char *strings = (char *)&s->label_values[f->n_labels];
    for (size_t i = 0; i < f->n_labels; i++) {
        size_t n = strlen(label_value(values, i)) + 1;
        memcpy(strings, label_value(values, i), n);
        s->label_values[i] = strings;
        strings += n;
    }
    return s;
}

/* Double the hash table once it holds as many series as slots. Caller holds
 * f->mu. A failed allocation just leaves the chains longer. */
static void family_grow_locked(cascade_metric_family *f)
{
    size_t size = f->table_size * 2;
    struct cascade_metric **table = calloc(size, sizeof(*table));
    if (!table)
        return;
    for (struct cascade_metric *s = f->first; s; s = s->order_next) {
        size_t slot = s->hash & (size - 1);
        s->hash_next = table[slot];
        table[slot] = s;
    }
    free(f->table);
    f->table = table;
    f->table_size = size;
}

cascade_metric *cascade_metric_get(cascade_metric_family *f, const char *const *label_values)
{
    if (!f)
        return NULL;
    uint64_t hash = labels_hash(f, label_values);
    struct cascade_metric *s;
    pthread_mutex_lock(&f->mu);
    for (s = f->table[hash & (f->table_size - 1)]; s; s = s->hash_next) {
        if (s->hash == hash && labels_equal(f, s, label_values))
            goto out;
    }
    s = series_new(f, label_values, hash);
    if (!s)
        goto out;
    size_t slot = hash & (f->table_size - 1);
    s->hash_next = f->table[slot];
    f->table[slot] = s;
    if (f->last)
        f->last->order_next = s;
    else
        f->first = s;
    f->last = s;
    if (++f->n_series > f->table_size)
        family_grow_locked(f);
out:
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* ----------------------------------------------------------------- updates */

void cascade_metric_inc(cascade_metric *c)
{
    cascade_metric_add(c, 1.0);
}

void cascade_metric_add(cascade_metric *c, double v)
{
    if (!c || isnan(v) || c->family->kind == KIND_HISTOGRAM)
        return;
    if (c->family->kind == KIND_COUNTER && v < 0)
        return;
    atomic_add_double(&c->value, v);
}

void cascade_metric_set(cascade_metric *g, double v)
{
    if (!g || g->family->kind != KIND_GAUGE)
        return;
    atomic_store_explicit(&g->value, double_to_bits(v), memory_order_relaxed);
}

void cascade_metric_observe(cascade_metric *h, double v)
{
    if (!h || isnan(v) || h->family->kind != KIND_HISTOGRAM)
        return;
    const cascade_metric_family *f = h->family;
    /* First bucket whose bound is >= v (Prometheus buckets are "le"). */
    size_t lo = 0, hi = f->n_buckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= f->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->value, v);
}

double cascade_metric_value(const cascade_metric *c)
{
    if (!c)
        return 0;
    return bits_to_double(
        atomic_load_explicit(&((cascade_metric *)c)->value, memory_order_relaxed));
}

/* --------------------------------------------------------------- rendering */

struct sbuf {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void sb_append(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_append(b, s, strlen(s));
}

/* Shortest text that reads back as the same double; Prometheus spellings
 * for the special values. */
static void format_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, len, "%.17g", v);
    }
}

static void sb_double(struct sbuf *b, double v)
{
    char num[40];
    format_double(num, sizeof(num), v);
    sb_puts(b, num);
}

static void sb_uint(struct sbuf *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    sb_puts(b, num);
}

/* Escape backslash and newline (HELP text), and also '"' in label values. */
static void sb_escaped(struct sbuf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (esc) {
            sb_append(b, run, (size_t)(s - run));
            sb_puts(b, esc);
            run = s + 1;
        }
    }
    sb_append(b, run, (size_t)(s - run));
}

/* "{a="x",b="y"}" plus le="..." for histogram buckets; nothing when empty. */
static void sb_labels(struct sbuf *b, const cascade_metric_family *f,
                      const struct cascade_metric *s, const char *le)
{
    if (f->n_labels == 0 && !le)
        return;
    sb_puts(b, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i > 0)
            sb_puts(b, ",");
        sb_puts(b, f->label_names[i]);
        sb_puts(b, "=\"");
        sb_escaped(b, s->label_values[i], true);
        sb_puts(b, "\"");
    }
    if (le) {
        sb_puts(b, f->n_labels ? ",le=\"" : "le=\"");
        sb_puts(b, le);
        sb_puts(b, "\"");
    }
    sb_puts(b, "}");
}

static void render_histogram(struct sbuf *b, const cascade_metric_family *f,
                             const struct cascade_metric *s)
{
    uint64_t cumulative = 0;
    char le[40];
    for (size_t i = 0; i <= f->n_buckets; i++) {
        cumulative +=
            atomic_load_explicit(&((struct cascade_metric *)s)->counts[i], memory_order_relaxed);
        if (i < f->n_buckets)
            format_double(le, sizeof(le), f->buckets[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        sb_puts(b, f->name);
        sb_puts(b, "_bucket");
        sb_labels(b, f, s, le);
        sb_puts(b, " ");
        sb_uint(b, cumulative);
        sb_puts(b, "\n");
    }
    sb_puts(b, f->name);
    sb_puts(b, "_sum");
    sb_labels(b, f, s, NULL);
    sb_puts(b, " ");
    sb_double(b, cascade_metric_value(s));
    sb_puts(b, "\n");
    /* _count is the +Inf bucket, so the two always agree in one scrape. */
    sb_puts(b, f->name);
    sb_puts(b, "_count");
    sb_labels(b, f, s, NULL);
    sb_puts(b, " ");
    sb_uint(b, cumulative);
    sb_puts(b, "\n");
}

static void render_family(struct sbuf *b, cascade_metric_family *f)
{
    sb_puts(b, "# HELP ");
    sb_puts(b, f->name);
    sb_puts(b, " ");
    sb_escaped(b, f->help, false);
    sb_puts(b, "\n# TYPE ");
    sb_puts(b, f->name);
    sb_puts(b, " ");
    sb_puts(b, kind_names[f->kind]);
    sb_puts(b, "\n");
    pthread_mutex_lock(&f->mu);
    for (const struct cascade_metric *s = f->first; s; s = s->order_next) {
        if (f->kind == KIND_HISTOGRAM) {
            render_histogram(b, f, s);
            continue;
        }
        sb_puts(b, f->name);
        sb_labels(b, f, s, NULL);
        sb_puts(b, " ");
        sb_double(b, cascade_metric_value(s));
        sb_puts(b, "\n");
    }
    pthread_mutex_unlock(&f->mu);
}

char *cascade_metrics_render(cascade_metrics *m)
{
    struct sbuf b = {0};
    sb_append(&b, "", 0); /* an empty registry renders as "" rather than NULL */
    if (m) {
        pthread_mutex_lock(&m->mu);
        for (cascade_metric_family *f = m->first; f; f = f->next)
            render_family(&b, f);
        pthread_mutex_unlock(&m->mu);
    }
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

/* ---------------------------------------------------------------- registry */

cascade_metrics *cascade_metrics_create(void)
{
    cascade_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void cascade_metrics_destroy(cascade_metrics *m)
{
    if (!m)
        return;
    /* Stop serving first: the HTTP thread reads the families. */
    if (m->daemon)
        MHD_stop_daemon(m->daemon);
    for (cascade_metric_family *f = m->first, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* -------------------------------------------------------------------- HTTP */

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned int status,
                                  const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    cascade_metrics *m = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics is served\n");
    if (strcmp(url, "/metrics") != 0)
        return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found: metrics are at /metrics\n");
    char *body = cascade_metrics_render(m);
    if (!body)
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    CASCADE_WARN(NULL, "metrics http: %s", line);
}

/* Split "host:port" / "[v6]:port" (host may be empty: all interfaces). */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon, *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return CASCADE_EINVAL;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return CASCADE_EINVAL;
        hlen = (size_t)(colon - addr);
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5 || strspn(p, "0123456789") != plen || atoi(p) > 65535 ||
        hlen >= hostlen || plen >= portlen)
        return CASCADE_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* A bound, listening TCP socket for addr; sets *port and *family. Returns the
 * fd or a negative code with a message. */
static int open_listener(const char *addr, int *port, int *family, char *err, size_t errlen)
{
    char host[256], portstr[8];
    struct addrinfo hints, *res = NULL;
    int fd = -1, saved = 0;
    if (split_addr(addr, host, sizeof(host), portstr, sizeof(portstr)) != 0) {
        snprintf(err, errlen, "metrics listen \"%s\": expected host:port (port 0..65535)", addr);
        return CASCADE_EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "metrics listen %s: %s", addr, gai_strerror(gai));
        return CASCADE_EINVAL;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
            *family = ai->ai_family;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "metrics listen %s: %s", addr, strerror(saved));
        return CASCADE_EIO;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        snprintf(err, errlen, "metrics listen %s: %s", addr, strerror(errno));
        close(fd);
        return CASCADE_EIO;
    }
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int cascade_metrics_serve(cascade_metrics *m, const char *addr, char *err, size_t errlen)
{
    int port = 0, family = AF_INET;
    if (!m || !addr) {
        snprintf(err, errlen, "metrics: no registry or address");
        return CASCADE_EINVAL;
    }
    if (m->daemon) {
        snprintf(err, errlen, "metrics: this registry is already served");
        return CASCADE_EINVAL;
    }
    int fd = open_listener(addr, &port, &family, err, errlen);
    if (fd < 0)
        return fd;
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_PER_IP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (!m->daemon) {
        close(fd);
        snprintf(err, errlen, "metrics listen %s: cannot start the HTTP server", addr);
        return CASCADE_EIO;
    }
    m->port = port;
    return port;
}

int cascade_metrics_port(const cascade_metrics *m)
{
    return m ? m->port : 0;
}
