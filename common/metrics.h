/* Prometheus metrics: a registry of counters, gauges and histograms with
 * label values, updated lock-free from any thread, and an HTTP endpoint
 * (libmicrohttpd) serving the text exposition format on /metrics.
 *
 * A registry is created in main and handed down (no globals). Metric handles
 * stay valid for the registry's lifetime. Registering the same name twice
 * returns the same family; label sets are created on first use.
 *
 * Thread-safety: every function may be called from any thread, except
 * create/destroy (the owner's thread). Updates are atomic and never lock;
 * cascade_metric_get and registration take a per-family / per-registry
 * mutex, so hot paths call them once and keep the handle. */
#ifndef CASCADE_METRICS_H
#define CASCADE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_metrics cascade_metrics;
typedef struct cascade_metric_family cascade_metric_family;
typedef struct cascade_metric cascade_metric;

/* Create an empty registry; NULL on out of memory. Destroy stops the HTTP
 * endpoint (if serving) before freeing; every family and metric handle of the
 * registry is invalid afterwards. destroy(NULL) is a no-op. */
cascade_metrics *cascade_metrics_create(void);
void cascade_metrics_destroy(cascade_metrics *m);

/* Declare a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*; label_names is
 * a comma-separated list ("method,code", each [a-zA-Z_][a-zA-Z0-9_]*, not
 * "le", at most 8) or NULL for none. help is copied. Buckets (histograms
 * only): finite upper bounds, strictly ascending, +Inf implied (at most 64);
 * NULL = default latency buckets in seconds (0.0001 .. 10). Returns NULL (and
 * logs why) on bad arguments or a name registered with another type, labels
 * or buckets; NULL when m is NULL, so code run without a registry (tests) can
 * register and update unconditionally. */
cascade_metric_family *cascade_metrics_counter(cascade_metrics *m, const char *name,
                                               const char *help, const char *label_names);
cascade_metric_family *cascade_metrics_gauge(cascade_metrics *m, const char *name, const char *help,
                                             const char *label_names);
cascade_metric_family *cascade_metrics_histogram(cascade_metrics *m, const char *name,
                                                 const char *help, const char *label_names,
                                                 const double *buckets, size_t n_buckets);

/* The series for these label values (as many as the family has labels, in
 * order; NULL when the family has none; values are copied, any bytes
 * allowed), created on first use. NULL on out of memory or when f is NULL.
 * Safe from any thread; cache the result on hot paths. */
cascade_metric *cascade_metric_get(cascade_metric_family *f, const char *const *label_values);

/* Updates. A NULL metric is a no-op, so callers need not check. inc/add work
 * on counters and gauges (a negative add to a counter is ignored: counters
 * only go up); set on gauges; observe on histograms (NaN is ignored). An
 * update of the wrong kind is ignored. */
void cascade_metric_inc(cascade_metric *c);
void cascade_metric_add(cascade_metric *c, double v);
void cascade_metric_set(cascade_metric *g, double v);
void cascade_metric_observe(cascade_metric *h, double v);

/* Current value of a counter or gauge (the sum of a histogram); 0 for NULL.
 * For tests and for code that reports its own state. */
double cascade_metric_value(const cascade_metric *c);

/* Render the whole registry in Prometheus text format (version 0.0.4) into a
 * malloc'd string (caller frees). Families in registration order, series in
 * creation order. NULL on out of memory. */
char *cascade_metrics_render(cascade_metrics *m);

/* Serve GET /metrics on addr ("127.0.0.1:51050", "[::1]:0", "0.0.0.0:9100";
 * port 0 picks a free one) from an internal thread until destroy; other paths
 * get 404. Up to 512 connections (128 per peer address), each closed after
 * 5 s idle, so idle connections cannot keep a scrape out. At most once per
 * registry. Returns the bound port, or a negative
 * code with a message in err ("metrics listen 127.0.0.1:51050: Address
 * already in use"). */
int cascade_metrics_serve(cascade_metrics *m, const char *addr, char *err, size_t errlen);

/* The port cascade_metrics_serve bound (the one it picked for port 0), or 0
 * when m is NULL or not served. Set before serving starts, never changed:
 * safe from any thread once cascade_metrics_serve has returned. */
int cascade_metrics_port(const cascade_metrics *m);

#endif
