/* JSON configuration over jansson. The source text is kept so that type errors
 * found later by the typed getters can still name "file:line:col": jansson
 * does not record positions of values, so the text is re-scanned on error. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "hash.h"

#define CONFIG_MAX_OVERRIDES 64
#define CONFIG_MAX_FILE (16 * 1024 * 1024)
#define CONFIG_SEG_MAX 256

struct cascade_config {
    json_t *root; /* always an object */
    char *source; /* file name or "<string>" */
    char *text;   /* source text (may be NULL for the empty config) */
    size_t text_len;
    /* Paths replaced by --set: their positions in the text are stale. */
    char *overrides[CONFIG_MAX_OVERRIDES];
    size_t n_overrides;
    int64_t mtime_s; /* of the file when loaded; 0 when not from a file */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- position scanner: finds where the value at a dotted path starts ---- */

struct scan {
    const char *p, *end;
    int line, col;
};

static void scan_advance(struct scan *s)
{
    if (s->p >= s->end)
        return;
    if (*s->p == '\n') {
        s->line++;
        s->col = 1;
    } else if (((unsigned char)*s->p & 0xC0) != 0x80) {
        s->col++; /* columns count characters, not UTF-8 continuation bytes */
    }
    s->p++;
}

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && isspace((unsigned char)*s->p))
        scan_advance(s);
}

/* Read a string token into buf (escapes other than \uXXXX decoded); returns
 * false on malformed input. buf may be NULL to skip. */
static bool scan_string(struct scan *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (s->p >= s->end || *s->p != '"')
        return false;
    scan_advance(s);
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p;
        if (c == '\\') {
            scan_advance(s);
            if (s->p >= s->end)
                return false;
            c = *s->p;
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c == 'u')
                c = '\x01'; /* never equals a path character: \u keys do not match */
        }
        if (buf && n + 1 < cap)
            buf[n++] = c;
        scan_advance(s);
    }
    if (s->p >= s->end)
        return false;
    scan_advance(s);
    if (buf && cap)
        buf[n] = '\0';
    return true;
}

static bool scan_value(struct scan *s);

static bool scan_container(struct scan *s, char close, bool is_object)
{
    scan_advance(s);
    scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        scan_advance(s);
        return true;
    }
    for (;;) {
        scan_ws(s);
        if (is_object) {
            if (!scan_string(s, NULL, 0))
                return false;
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            scan_advance(s);
            scan_ws(s);
        }
        if (!scan_value(s))
            return false;
        scan_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == close) {
            scan_advance(s);
            return true;
        }
        if (*s->p != ',')
            return false;
        scan_advance(s);
    }
}

static bool scan_value(struct scan *s)
{
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{':
        return scan_container(s, '}', true);
    case '[':
        return scan_container(s, ']', false);
    case '"':
        return scan_string(s, NULL, 0);
    default:
        while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
            scan_advance(s);
        return true;
    }
}

/* Copy the next dotted segment of *path into seg; advance *path past it. */
static bool next_segment(const char **path, char *seg, size_t cap)
{
    const char *dot = strchr(*path, '.');
    size_t len = dot ? (size_t)(dot - *path) : strlen(*path);
    if (len == 0 || len >= cap)
        return false;
    memcpy(seg, *path, len);
    seg[len] = '\0';
    *path += len + (dot ? 1 : 0);
    return true;
}

static bool parse_index(const char *seg, size_t *out)
{
    if (!*seg)
        return false;
    for (const char *q = seg; *q; q++) {
        if (!isdigit((unsigned char)*q))
            return false;
    }
    errno = 0;
    unsigned long long v = strtoull(seg, NULL, 10);
    if (errno)
        return false;
    *out = (size_t)v;
    return true;
}

/* Move s to the start of the member/element named seg inside the container at s. */
static bool scan_enter(struct scan *s, const char *seg)
{
    bool is_object = *s->p == '{';
    size_t want = 0, index = 0;
    if (!is_object && (*s->p != '[' || !parse_index(seg, &want)))
        return false;
    char close = is_object ? '}' : ']';
    scan_advance(s);
    for (;;) {
        scan_ws(s);
        if (s->p >= s->end || *s->p == close)
            return false;
        bool match;
        if (is_object) {
            char key[CONFIG_SEG_MAX];
            if (!scan_string(s, key, sizeof(key)))
                return false;
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            scan_advance(s);
            scan_ws(s);
            match = strcmp(key, seg) == 0;
        } else {
            match = index++ == want;
        }
        if (match)
            return true;
        if (!scan_value(s))
            return false;
        scan_ws(s);
        if (s->p >= s->end || *s->p != ',')
            return false;
        scan_advance(s);
    }
}

/* Line and column (1-based) where the value at path starts in the text. */
static bool config_locate(const cascade_config *c, const char *path, int *line, int *col)
{
    if (!c->text)
        return false;
    struct scan s = {c->text, c->text + c->text_len, 1, 1};
    char seg[CONFIG_SEG_MAX];
    scan_ws(&s);
    while (*path) {
        if (!next_segment(&path, seg, sizeof(seg)) || s.p >= s.end)
            return false;
        if (!scan_enter(&s, seg))
            return false;
    }
    *line = s.line;
    *col = s.col;
    return true;
}

/* ---- loading ---- */

static cascade_config *config_new(json_t *root, const char *source, char *text, size_t len)
{
    cascade_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->source = strdup(source);
    if (!c->source) {
        free(c);
        return NULL;
    }
    c->root = root;
    c->text = text;
    c->text_len = len;
    return c;
}

/* Parse text (taking ownership of it) into a config; NULL with err on failure. */
static cascade_config *config_from_text(char *text, size_t len, const char *name, char *err,
                                        size_t errlen)
{
    json_error_t jerr;
    cascade_config *c = NULL;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_err(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        set_err(err, errlen, "%s:1:1: the top level must be a JSON object", name);
        goto out;
    }
    c = config_new(root, name, text, len);
    if (!c)
        set_err(err, errlen, "%s: out of memory", name);
out:
    if (!c) {
        json_decref(root);
        free(text);
    }
    return c;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= CONFIG_MAX_FILE) {
            set_err(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_FILE);
            goto fail;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            goto fail;
        buf = bigger;
        cap *= 2;
    }
    if (!buf) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (ferror(f)) {
        set_err(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

cascade_config *cascade_config_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    struct stat st;
    int64_t mtime_s = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return NULL;
    cascade_config *c = config_from_text(text, len, path, err, errlen);
    if (c)
        c->mtime_s = mtime_s;
    return c;
}

cascade_config *cascade_config_parse(const char *text, const char *name, char *err, size_t errlen)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy) {
        set_err(err, errlen, "%s: out of memory", name ? name : "<string>");
        return NULL;
    }
    memcpy(copy, text, len + 1);
    return config_from_text(copy, len, name ? name : "<string>", err, errlen);
}

cascade_config *cascade_config_empty(void)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    cascade_config *c = config_new(root, "<defaults>", NULL, 0);
    if (!c)
        json_decref(root);
    return c;
}

void cascade_config_destroy(cascade_config *c)
{
    if (!c)
        return;
    json_decref(c->root);
    for (size_t i = 0; i < c->n_overrides; i++)
        free(c->overrides[i]);
    free(c->text);
    free(c->source);
    free(c);
}

const char *cascade_config_source(const cascade_config *c)
{
    return c ? c->source : "<none>";
}

/* ---- lookup and --set ---- */

json_t *cascade_config_get(const cascade_config *c, const char *path)
{
    if (!c || !path)
        return NULL;
    json_t *v = c->root;
    char seg[CONFIG_SEG_MAX];
    while (*path && v) {
        if (!next_segment(&path, seg, sizeof(seg)))
            return NULL;
        size_t index;
        if (json_is_object(v))
            v = json_object_get(v, seg);
        else if (json_is_array(v) && parse_index(seg, &index))
            v = json_array_get(v, index);
        else
            v = NULL;
    }
    return v;
}

static json_t *parse_set_value(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    return v ? v : json_string(text);
}

static void remember_override(cascade_config *c, const char *path)
{
    if (c->n_overrides < CONFIG_MAX_OVERRIDES) {
        char *copy = strdup(path);
        if (copy)
            c->overrides[c->n_overrides++] = copy;
    }
}

int cascade_config_set(cascade_config *c, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    size_t path_len = eq ? (size_t)(eq - assignment) : strlen(assignment);
    char path[CONFIG_SEG_MAX * 2];
    if (!eq || path_len == 0 || path_len >= sizeof(path)) {
        set_err(err, errlen, "--set %s: expected path=value", assignment);
        return CASCADE_EINVAL;
    }
    memcpy(path, assignment, path_len);
    path[path_len] = '\0';

    json_t *obj = c->root;
    const char *rest = path;
    char seg[CONFIG_SEG_MAX];
    for (;;) {
        if (!next_segment(&rest, seg, sizeof(seg))) {
            set_err(err, errlen, "--set %s: empty or overlong path segment", path);
            return CASCADE_EINVAL;
        }
        if (!*rest)
            break;
        json_t *child = json_object_get(obj, seg);
        if (!child) {
            child = json_object();
            if (!child || json_object_set_new(obj, seg, child) != 0)
                goto nomem;
        } else if (!json_is_object(child)) {
            set_err(err, errlen, "--set %s: \"%s\" is not an object", path, seg);
            return CASCADE_EINVAL;
        }
        obj = child;
    }
    json_t *value = parse_set_value(eq + 1);
    if (!value || json_object_set_new(obj, seg, value) != 0)
        goto nomem;
    remember_override(c, path);
    return 0;
nomem:
    set_err(err, errlen, "--set %s: out of memory", path);
    return CASCADE_ENOMEM;
}

/* ---- typed getters ---- */

static bool is_overridden(const cascade_config *c, const char *path)
{
    for (size_t i = 0; i < c->n_overrides; i++) {
        size_t n = strlen(c->overrides[i]);
        if (strncmp(path, c->overrides[i], n) == 0 && (path[n] == '\0' || path[n] == '.'))
            return true;
    }
    return false;
}

/* "file:line:col: path: expected X, got Y" (position when known). */
static int type_error(const cascade_config *c, const char *path, json_t *v, char *err,
                      size_t errlen, const char *expected)
{
    char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    const char *shown = got ? got : "?";
    int line, col;
    if (is_overridden(c, path))
        set_err(err, errlen, "--set %s: expected %s, got %s", path, expected, shown);
    else if (config_locate(c, path, &line, &col))
        set_err(err, errlen, "%s:%d:%d: %s: expected %s, got %s", c->source, line, col, path,
                expected, shown);
    else
        set_err(err, errlen, "%s: %s: expected %s, got %s", c->source, path, expected, shown);
    free(got);
    return CASCADE_EINVAL;
}

int cascade_config_int(const cascade_config *c, const char *path, int64_t def, int64_t min,
                       int64_t max, int64_t *out, char *err, size_t errlen)
{
    json_t *v = cascade_config_get(c, path);
    if (!v) {
        *out = def;
        return 0;
    }
    char expected[96];
    snprintf(expected, sizeof(expected), "an integer in [%" PRId64 ", %" PRId64 "]", min, max);
    if (!json_is_integer(v))
        return type_error(c, path, v, err, errlen, expected);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return type_error(c, path, v, err, errlen, expected);
    *out = x;
    return 0;
}

int cascade_config_size(const cascade_config *c, const char *path, size_t *v, int64_t min,
                        int64_t max, char *err, size_t errlen)
{
    int64_t x = 0;
    int rc = cascade_config_int(c, path, (int64_t)*v, min, max, &x, err, errlen);
    if (rc == 0)
        *v = (size_t)x;
    return rc;
}

int cascade_config_double(const cascade_config *c, const char *path, double def, double min,
                          double max, double *out, char *err, size_t errlen)
{
    json_t *v = cascade_config_get(c, path);
    if (!v) {
        *out = def;
        return 0;
    }
    char expected[96];
    snprintf(expected, sizeof(expected), "a number in [%g, %g]", min, max);
    if (!json_is_number(v))
        return type_error(c, path, v, err, errlen, expected);
    double x = json_number_value(v);
    if (!(x >= min && x <= max))
        return type_error(c, path, v, err, errlen, expected);
    *out = x;
    return 0;
}

int cascade_config_bool(const cascade_config *c, const char *path, bool def, bool *out, char *err,
                        size_t errlen)
{
    json_t *v = cascade_config_get(c, path);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return type_error(c, path, v, err, errlen, "true or false");
    *out = json_is_true(v);
    return 0;
}

int cascade_config_string(const cascade_config *c, const char *path, const char *def,
                          const char **out, char *err, size_t errlen)
{
    json_t *v = cascade_config_get(c, path);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_string(v))
        return type_error(c, path, v, err, errlen, "a string");
    *out = json_string_value(v);
    return 0;
}

void cascade_config_identity(const cascade_config *c, char *version, size_t vlen, char *hash,
                             size_t hlen)
{
    const json_t *v = c ? json_object_get(c->root, "version") : NULL;
    if (version && vlen) {
        if (json_is_string(v))
            snprintf(version, vlen, "%s", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(version, vlen, "%lld", (long long)json_integer_value(v));
        else if (c && c->mtime_s)
            snprintf(version, vlen, "mtime:%lld", (long long)c->mtime_s);
        else
            snprintf(version, vlen, "none");
    }
    if (!hash || !hlen)
        return;
    /* Sorted keys make the text, hence the hash, independent of key order
     * and formatting; overrides are in the tree, so they count too. */
    char *dump = c ? json_dumps(c->root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    uint64_t h = dump ? cascade_hash64(dump, strlen(dump), 0) : 0;
    snprintf(hash, hlen, "%016" PRIx64, h);
    free(dump);
}
