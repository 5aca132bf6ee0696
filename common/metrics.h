/* Prometheus metrics: a registry of counters, gauges and histograms with
 * label values, updated lock-free from any thread, and an HTTP endpoint
 * (libmicrohttpd) serving the text exposition format on /metrics.
 *
 * A registry is created in main and handed down (no globals). Metric handles
 * stay valid for the registry's lifetime. Registering the same name twice
 * returns the same family; label sets are created on first use. */
#ifndef CASCADE_METRICS_H
#define CASCADE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cascade_metrics cascade_metrics;
typedef struct cascade_metric_family cascade_metric_family;
typedef struct cascade_metric cascade_metric;

/* Create an empty registry; NULL on out of memory. destroy(NULL) is a no-op
 * and also stops the HTTP endpoint. */
cascade_metrics *cascade_metrics_create(void);
void cascade_metrics_destroy(cascade_metrics *m);

/* Declare a family. label_names is a comma-separated list ("method,code") or
 * NULL. Buckets (histograms only): upper bounds ascending, +Inf implied; NULL
 * = default latency buckets in seconds (0.0001 .. 10). NULL on bad arguments
 * or a name registered with another type or labels. */
cascade_metric_family *cascade_metrics_counter(cascade_metrics *m, const char *name,
                                               const char *help, const char *label_names);
cascade_metric_family *cascade_metrics_gauge(cascade_metrics *m, const char *name,
                                             const char *help, const char *label_names);
cascade_metric_family *cascade_metrics_histogram(cascade_metrics *m, const char *name,
                                                 const char *help, const char *label_names,
                                                 const double *buckets, size_t n_buckets);

/* The series for these label values (as many as the family has labels, in
 * order), created on first use. NULL only on out of memory. Safe from any
 * thread; cache the result on hot paths. */
cascade_metric *cascade_metric_get(cascade_metric_family *f, const char *const *label_values);

/* Updates (NULL metric is a no-op, so callers need not check). */
void cascade_metric_inc(cascade_metric *c);
void cascade_metric_add(cascade_metric *c, double v);
void cascade_metric_set(cascade_metric *g, double v);
void cascade_metric_observe(cascade_metric *h, double v);

/* Render the whole registry in Prometheus text format into a malloc'd string
 * (caller frees). NULL on out of memory. */
char *cascade_metrics_render(cascade_metrics *m);

/* Serve GET /metrics on addr ("127.0.0.1:51050"; port 0 picks a free one).
 * Returns the bound port, or a negative code with a message in err. */
int cascade_metrics_serve(cascade_metrics *m, const char *addr, char *err, size_t errlen);

#endif
