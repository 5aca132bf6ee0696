/* JSON configuration (jansson): one file for the whole stack, with a section
 * per service. Parse errors and type errors name "file:line:col". Values can be
 * overridden with "--set path=value" flags (dotted paths, value parsed as
 * JSON when it is valid JSON, as a string otherwise). Not thread-safe for
 * writes; concurrent reads are fine once loading is done. */
#ifndef CASCADE_CONFIG_H
#define CASCADE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct cascade_config cascade_config;

/* Load a config file. On failure returns NULL and writes
 * "path:line:col: message" to err. */
cascade_config *cascade_config_load(const char *path, char *err, size_t errlen);

/* Parse a config from a string (name is used in error messages). */
cascade_config *cascade_config_parse(const char *text, const char *name, char *err, size_t errlen);

/* An empty config ({}), for defaults-only runs. */
cascade_config *cascade_config_empty(void);

/* NULL is a no-op. */
void cascade_config_destroy(cascade_config *c);

/* Apply "a.b.c=value": creates intermediate objects. Returns 0 or CASCADE_EINVAL
 * with a message in err ("--set recall.quota: expected path=value"). */
int cascade_config_set(cascade_config *c, const char *assignment, char *err, size_t errlen);

/* The JSON value at a dotted path, or NULL (also when c is NULL). Borrowed;
 * valid while c lives. */
json_t *cascade_config_get(const cascade_config *c, const char *path);

/* Typed getters: return def when the path is absent (a NULL config reads as
 * an empty one, so defaults-only callers need not create one). When present
 * with the wrong type or out of [min,max], return CASCADE_EINVAL and write
 * "file:line:col: path: expected ..." (position when known) to err. */
int cascade_config_int(const cascade_config *c, const char *path, int64_t def, int64_t min,
                       int64_t max, int64_t *out, char *err, size_t errlen);
int cascade_config_double(const cascade_config *c, const char *path, double def, double min,
                          double max, double *out, char *err, size_t errlen);
int cascade_config_bool(const cascade_config *c, const char *path, bool def, bool *out, char *err,
                        size_t errlen);
/* A size in place: *v holds the default on entry and the value on success
 * (unchanged on error); min >= 0. The same checks and messages as
 * cascade_config_int. */
int cascade_config_size(const cascade_config *c, const char *path, size_t *v, int64_t min,
                        int64_t max, char *err, size_t errlen);
/* *out is borrowed from the config (or is def). */
int cascade_config_string(const cascade_config *c, const char *path, const char *def,
                          const char **out, char *err, size_t errlen);

/* Name of the file the config came from ("<string>" when parsed from text). */
const char *cascade_config_source(const cascade_config *c);

/* The config's identity, for the reload log, the cascade_config_info metric
 * and the debug trace. version (vlen bytes): the top-level "version" key
 * (string or integer) when set, else "mtime:<unix seconds>" of the file it
 * was loaded from, else "none". hash (hlen bytes, 17 fit): 16 hex digits of
 * XXH3-64 over the resolved JSON (keys sorted, compact), so --set overrides
 * count and formatting does not. Either buffer may be NULL. */
void cascade_config_identity(const cascade_config *c, char *version, size_t vlen, char *hash,
                             size_t hlen);

#endif
