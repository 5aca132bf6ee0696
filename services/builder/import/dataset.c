/* The canonical data set: in-memory arrays with id -> index hash maps, and the
 * strict TSV reader/writer for users.tsv, items.tsv and events.tsv. Reader
 * errors name the file and line ("events.tsv:17: expected 5 tab-separated
 * fields, got 3") so a bad input can be fixed by hand. */
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "hash.h"
#include "idmap.h"

#define EMPTY_SLOT UINT32_MAX

/* Maps from ids to array indices: users by their string id (open addressing,
 * slots hold an index or EMPTY_SLOT), items by their u64 id (an id map). */
struct cascade_ds_index {
    uint32_t *user_slots;
    size_t user_cap; /* power of two */
    cascade_idmap items;
};

static const char *const users_header = "user_id\tage\tgender\tcity\tgeohash\tinterests";
static const char *const items_header =
    "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\tduration_s";
static const char *const events_header = "ts\tuser_id\titem_id\ttype\tvalue";

void cascade_behaviour_weights_default(struct cascade_behaviour_weights *w)
{
    for (uint32_t t = 0; t <= CASCADE_EV_MAX; t++)
        w->w[t] = cascade_event_interest_weight(t);
}

int cascade_behaviour_weights_parse(struct cascade_behaviour_weights *w, const char *spec,
                                    char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint32_t type;
        char *end;
        if (!eq) {
            snprintf(err, errlen, "weights: expected type=value, got '%s'", tok);
            return CASCADE_EINVAL;
        }
        *eq = '\0';
        if (cascade_event_type_parse(tok, &type) != 0) {
            snprintf(err, errlen, "weights: unknown behaviour '%s' (use " CASCADE_EV_NAMES ")",
                     tok);
            return CASCADE_EINVAL;
        }
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || *end || v < 0 || v > 1000) {
            snprintf(err, errlen, "weights: %s: expected a number in [0, 1000], got '%s'", tok,
                     eq + 1);
            return CASCADE_EINVAL;
        }
        w->w[type] = (float)v;
    }
    return 0;
}

/* ---- id maps ---- */

static size_t user_slot(const cascade_dataset *ds, const char *id)
{
    const struct cascade_ds_index *ix = ds->index;
    size_t mask = ix->user_cap - 1;
    size_t s = (size_t)cascade_hash_str(id, 0x5eed) & mask;
    while (ix->user_slots[s] != EMPTY_SLOT && strcmp(ds->users[ix->user_slots[s]].id, id) != 0)
        s = (s + 1) & mask;
    return s;
}

static uint32_t *new_slots(size_t cap)
{
    uint32_t *slots = malloc(cap * sizeof(uint32_t));
    if (slots)
        memset(slots, 0xff, cap * sizeof(uint32_t));
    return slots;
}

/* Grow the user map so that n+1 users keep the load factor under 1/2. */
static int grow_user_map(cascade_dataset *ds)
{
    struct cascade_ds_index *ix = ds->index;
    if ((ds->n_users + 1) * 2 <= ix->user_cap)
        return 0;
    size_t cap = ix->user_cap * 2;
    uint32_t *slots = new_slots(cap);
    if (!slots)
        return CASCADE_ENOMEM;
    free(ix->user_slots);
    ix->user_slots = slots;
    ix->user_cap = cap;
    for (size_t i = 0; i < ds->n_users; i++)
        ix->user_slots[user_slot(ds, ds->users[i].id)] = (uint32_t)i;
    return 0;
}

/* Make room for one more element in a growable array. */
static int reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return CASCADE_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

cascade_dataset *cascade_dataset_create(void)
{
    cascade_dataset *ds = calloc(1, sizeof(*ds));
    if (!ds)
        return NULL;
    ds->index = calloc(1, sizeof(*ds->index));
    if (!ds->index)
        goto fail;
    ds->index->user_cap = 64;
    ds->index->user_slots = new_slots(64);
    if (!ds->index->user_slots || cascade_idmap_init(&ds->index->items, NULL, 64) != 0)
        goto fail;
    return ds;
fail:
    cascade_dataset_destroy(ds);
    return NULL;
}

void cascade_dataset_destroy(cascade_dataset *ds)
{
    if (!ds)
        return;
    if (ds->index) {
        free(ds->index->user_slots);
        cascade_idmap_release(&ds->index->items);
        free(ds->index);
    }
    free(ds->users);
    free(ds->items);
    free(ds->events);
    free(ds);
}

long cascade_dataset_find_user(const cascade_dataset *ds, const char *user_id)
{
    uint32_t v = ds->index->user_slots[user_slot(ds, user_id)];
    return v == EMPTY_SLOT ? -1 : (long)v;
}

long cascade_dataset_find_item(const cascade_dataset *ds, uint64_t item_id)
{
    const struct cascade_idmap_entry *e = cascade_idmap_find(&ds->index->items, item_id);
    return e ? (long)e->index : -1;
}

int cascade_dataset_add_user(cascade_dataset *ds, const struct cascade_ds_user *u, size_t *index)
{
    if (u->id[0] == '\0' || cascade_dataset_find_user(ds, u->id) >= 0)
        return CASCADE_EINVAL;
    if (ds->n_users >= UINT32_MAX - 1)
        return CASCADE_ETOOBIG;
    if (grow_user_map(ds) != 0 ||
        reserve((void **)&ds->users, &ds->cap_users, ds->n_users, sizeof(*ds->users)) != 0)
        return CASCADE_ENOMEM;
    ds->users[ds->n_users] = *u;
    ds->index->user_slots[user_slot(ds, u->id)] = (uint32_t)ds->n_users;
    if (index)
        *index = ds->n_users;
    ds->n_users++;
    return 0;
}

int cascade_dataset_add_item(cascade_dataset *ds, const struct cascade_ds_item *it, size_t *index)
{
    if (cascade_dataset_find_item(ds, it->id) >= 0)
        return CASCADE_EINVAL;
    if (ds->n_items >= UINT32_MAX - 1)
        return CASCADE_ETOOBIG;
    if (reserve((void **)&ds->items, &ds->cap_items, ds->n_items, sizeof(*ds->items)) != 0)
        return CASCADE_ENOMEM;
    struct cascade_idmap_entry *e = cascade_idmap_upsert(&ds->index->items, it->id, NULL);
    if (!e)
        return CASCADE_ENOMEM;
    e->index = (uint32_t)ds->n_items;
    ds->items[ds->n_items] = *it;
    if (index)
        *index = ds->n_items;
    ds->n_items++;
    return 0;
}

int cascade_dataset_put_item(cascade_dataset *ds, const struct cascade_ds_item *it)
{
    long at = cascade_dataset_find_item(ds, it->id);
    if (at < 0)
        return cascade_dataset_add_item(ds, it, NULL);
    ds->items[at] = *it;
    return 0;
}

int cascade_dataset_add_event_idx(cascade_dataset *ds, int64_t ts, uint32_t user, uint32_t item,
                                  uint32_t type, float value)
{
    if (user >= ds->n_users || item >= ds->n_items || type < 1 || type > CASCADE_EV_MAX)
        return CASCADE_EINVAL;
    if (reserve((void **)&ds->events, &ds->cap_events, ds->n_events, sizeof(*ds->events)) != 0)
        return CASCADE_ENOMEM;
    ds->events[ds->n_events++] = (struct cascade_ds_event){ts, user, item, type, value};
    return 0;
}

int cascade_dataset_add_event(cascade_dataset *ds, int64_t ts, const char *user_id,
                              uint64_t item_id, uint32_t type, float value)
{
    long item = cascade_dataset_find_item(ds, item_id);
    if (item < 0)
        return CASCADE_ENOTFOUND;
    long user = cascade_dataset_find_user(ds, user_id);
    if (user < 0) {
        struct cascade_ds_user u = {0};
        size_t idx;
        if (strlen(user_id) > CASCADE_DS_ID_MAX)
            return CASCADE_EINVAL;
        snprintf(u.id, sizeof(u.id), "%s", user_id);
        int rc = cascade_dataset_add_user(ds, &u, &idx);
        if (rc != 0)
            return rc;
        ds->implicit_users++;
        user = (long)idx;
    }
    return cascade_dataset_add_event_idx(ds, ts, (uint32_t)user, (uint32_t)item, type, value);
}

/* ---- sorting ---- */

struct ts_order {
    int64_t ts;
    size_t pos;
};

static int cmp_ts_order(const void *a, const void *b)
{
    const struct ts_order *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

int cascade_dataset_sort_events(cascade_dataset *ds)
{
    size_t n = ds->n_events;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = ds->events[i - 1].ts <= ds->events[i].ts;
    if (sorted)
        return 0;
    struct ts_order *ord = malloc(n * sizeof(*ord));
    struct cascade_ds_event *out = malloc(n * sizeof(*out));
    if (!ord || !out) {
        free(ord);
        free(out);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = (struct ts_order){ds->events[i].ts, i};
    qsort(ord, n, sizeof(*ord), cmp_ts_order);
    for (size_t i = 0; i < n; i++)
        out[i] = ds->events[ord[i].pos];
    free(ord);
    free(ds->events);
    ds->events = out;
    ds->cap_events = n;
    return 0;
}

size_t cascade_dataset_request_end(const cascade_dataset *ds, size_t i)
{
    const struct cascade_ds_event *first = &ds->events[i];
    size_t end = i + 1;
    if (first->type != CASCADE_EV_IMPRESSION)
        return end;
    while (end < ds->n_events && ds->events[end].type == CASCADE_EV_IMPRESSION &&
           ds->events[end].user == first->user && ds->events[end].ts == first->ts)
        end++;
    return end;
}

int64_t cascade_dataset_last_ts(const cascade_dataset *ds)
{
    int64_t last = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        if (ds->events[i].ts > last)
            last = ds->events[i].ts;
    return last;
}

int cascade_user_events_build(const cascade_dataset *ds, struct cascade_user_events *ue)
{
    ue->off = calloc(ds->n_users + 1, sizeof(size_t));
    ue->idx = malloc((ds->n_events ? ds->n_events : 1) * sizeof(uint32_t));
    if (!ue->off || !ue->idx) {
        cascade_user_events_free(ue);
        return CASCADE_ENOMEM;
    }
    for (size_t i = 0; i < ds->n_events; i++)
        ue->off[ds->events[i].user + 1]++;
    for (size_t u = 0; u < ds->n_users; u++)
        ue->off[u + 1] += ue->off[u];
    size_t *fill = malloc((ds->n_users + 1) * sizeof(size_t));
    if (!fill) {
        cascade_user_events_free(ue);
        return CASCADE_ENOMEM;
    }
    memcpy(fill, ue->off, (ds->n_users + 1) * sizeof(size_t));
    for (size_t i = 0; i < ds->n_events; i++)
        ue->idx[fill[ds->events[i].user]++] = (uint32_t)i;
    free(fill);
    return 0;
}

void cascade_user_events_free(struct cascade_user_events *ue)
{
    free(ue->off);
    free(ue->idx);
    ue->off = NULL;
    ue->idx = NULL;
}

/* ---- TSV reading ---- */

#define MAX_FIELDS 16

/* One line being parsed: where it came from, and its fields (split in place). */
struct line_ctx {
    const char *path;
    size_t lineno;
    char *field[MAX_FIELDS];
    int n_fields;
    char *err;
    size_t errlen;
};

static int split_tabs(struct line_ctx *lc, char *line)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    lc->n_fields = 0;
    char *p = line;
    for (;;) {
        if (lc->n_fields == MAX_FIELDS)
            return lc->n_fields + 1; /* too many: reported by the caller */
        lc->field[lc->n_fields++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return lc->n_fields;
}

static int field_error(struct line_ctx *lc, const char *name, const char *expected, const char *got)
{
    snprintf(lc->err, lc->errlen, "%s:%zu: field %s: expected %s, got '%.40s'", lc->path,
             lc->lineno, name, expected, got);
    return CASCADE_EFORMAT;
}

static int parse_u64(struct line_ctx *lc, int i, const char *name, uint64_t max, uint64_t *out)
{
    const char *s = lc->field[i];
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return field_error(lc, name, "a non-negative integer", s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return field_error(lc, name, "a non-negative integer in range", s);
    *out = v;
    return 0;
}

static int parse_u32(struct line_ctx *lc, int i, const char *name, uint32_t max, uint32_t *out)
{
    uint64_t v;
    int rc = parse_u64(lc, i, name, max, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

static int parse_i64(struct line_ctx *lc, int i, const char *name, int64_t *out)
{
    const char *s = lc->field[i];
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return field_error(lc, name, "an integer", s);
    *out = v;
    return 0;
}

static int parse_float(struct line_ctx *lc, int i, const char *name, float *out)
{
    const char *s = lc->field[i];
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v || v < 0 || v > 1e9)
        return field_error(lc, name, "a non-negative number", s);
    *out = (float)v;
    return 0;
}

/* Comma-separated ids; empty allowed; entries past max are dropped. */
static int parse_list(struct line_ctx *lc, int i, const char *name, uint32_t *out, uint32_t max,
                      uint32_t *count)
{
    char *s = lc->field[i];
    *count = 0;
    if (*s == '\0')
        return 0;
    for (char *p = s;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9')
            return field_error(lc, name, "comma-separated non-negative integers", s);
        unsigned long v = strtoul(p, &end, 10);
        if (errno || v > UINT32_MAX || (*end != ',' && *end != '\0'))
            return field_error(lc, name, "comma-separated non-negative integers", s);
        if (*count < max)
            out[(*count)++] = (uint32_t)v;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    return 0;
}

static int parse_geohash(struct line_ctx *lc, int i, char *out)
{
    const char *s = lc->field[i];
    if (strlen(s) > CASCADE_DS_GEOHASH_MAX ||
        strspn(s, "0123456789bcdefghjkmnpqrstuvwxyz") != strlen(s))
        return field_error(lc, "geohash", "up to 12 geohash base32 characters (or empty)", s);
    strcpy(out, s);
    return 0;
}

static int parse_user_line(struct line_ctx *lc, cascade_dataset *ds)
{
    struct cascade_ds_user u = {0};
    int rc;
    if (lc->field[0][0] == '\0' || strlen(lc->field[0]) > CASCADE_DS_ID_MAX)
        return field_error(lc, "user_id", "1 to 64 characters", lc->field[0]);
    strcpy(u.id, lc->field[0]);
    if ((rc = parse_u32(lc, 1, "age", 200, &u.age)) ||
        (rc = parse_u32(lc, 2, "gender", 3, &u.gender)) ||
        (rc = parse_u32(lc, 3, "city", UINT32_MAX, &u.city)) ||
        (rc = parse_geohash(lc, 4, u.geohash)) ||
        (rc =
             parse_list(lc, 5, "interests", u.interests, CASCADE_DS_MAX_INTERESTS, &u.n_interests)))
        return rc;
    rc = cascade_dataset_add_user(ds, &u, NULL);
    if (rc == CASCADE_EINVAL) {
        snprintf(lc->err, lc->errlen, "%s:%zu: duplicate user_id '%s'", lc->path, lc->lineno, u.id);
        return CASCADE_EFORMAT;
    }
    return rc;
}

/* The nine fields of an items.tsv line. */
static int parse_item_fields(struct line_ctx *lc, struct cascade_ds_item *it)
{
    int rc;
    *it = (struct cascade_ds_item){0};
    if ((rc = parse_u64(lc, 0, "item_id", UINT64_MAX, &it->id)) ||
        (rc = parse_u64(lc, 1, "author_id", UINT64_MAX, &it->author_id)) ||
        (rc = parse_u32(lc, 2, "category", UINT32_MAX, &it->category)) ||
        (rc = parse_list(lc, 3, "tags", it->tags, CASCADE_DS_MAX_TAGS, &it->n_tags)) ||
        (rc = parse_i64(lc, 4, "created_at", &it->created_at)) ||
        (rc = parse_geohash(lc, 5, it->geohash)) ||
        (rc = parse_u32(lc, 6, "city", UINT32_MAX, &it->city)) ||
        (rc = parse_u32(lc, 7, "media_type", 2, &it->media_type)) ||
        (rc = parse_float(lc, 8, "duration_s", &it->duration_s)))
        return rc;
    return 0;
}

static int parse_item_line(struct line_ctx *lc, cascade_dataset *ds)
{
    struct cascade_ds_item it;
    int rc;
    if ((rc = parse_item_fields(lc, &it)) != 0)
        return rc;
    rc = cascade_dataset_add_item(ds, &it, NULL);
    if (rc == CASCADE_EINVAL) {
        snprintf(lc->err, lc->errlen, "%s:%zu: duplicate item_id %" PRIu64, lc->path, lc->lineno,
                 it.id);
        return CASCADE_EFORMAT;
    }
    return rc;
}

/* A line of items.online.tsv: the same fields; a known id is replaced (the
 * online record is the newer one). */
static int parse_online_item_line(struct line_ctx *lc, cascade_dataset *ds)
{
    struct cascade_ds_item it;
    int rc;
    if ((rc = parse_item_fields(lc, &it)) != 0)
        return rc;
    if ((rc = cascade_dataset_put_item(ds, &it)) == 0)
        ds->online_items++;
    return rc;
}

static int parse_event_line(struct line_ctx *lc, cascade_dataset *ds)
{
    int64_t ts;
    uint64_t item;
    uint32_t type;
    float value;
    int rc;
    if ((rc = parse_i64(lc, 0, "ts", &ts)))
        return rc;
    if (lc->field[1][0] == '\0' || strlen(lc->field[1]) > CASCADE_DS_ID_MAX)
        return field_error(lc, "user_id", "1 to 64 characters", lc->field[1]);
    if ((rc = parse_u64(lc, 2, "item_id", UINT64_MAX, &item)))
        return rc;
    if (cascade_event_type_parse(lc->field[3], &type) != 0)
        return field_error(lc, "type", "one of " CASCADE_EV_NAMES, lc->field[3]);
    if ((rc = parse_float(lc, 4, "value", &value)))
        return rc;
    rc = cascade_dataset_add_event(ds, ts, lc->field[1], item, type, value);
    if (rc == CASCADE_ENOTFOUND) {
        ds->unknown_item_events++;
        return 0;
    }
    return rc;
}

typedef int (*line_parser)(struct line_ctx *lc, cascade_dataset *ds);

/* Read one TSV file line by line: skip the header (a first line equal to the
 * expected one) and blank lines, check the field count, parse each line. */
static int read_tsv(const char *dir, const char *name, const char *header, int n_fields,
                    line_parser parse, int64_t max_bytes, cascade_dataset *ds, char *err,
                    size_t errlen)
{
    int64_t offset = 0;
    char path[4096];
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    struct line_ctx lc = {.path = path, .err = err, .errlen = errlen};

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? CASCADE_ENOTFOUND : CASCADE_EIO;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        /* A limit (a committed length) always falls on a line's end. */
        if (max_bytes >= 0 && offset + len > max_bytes)
            break;
        offset += len;
        lc.lineno++;
        if (line[0] == '\n' || (line[0] == '\r' && line[1] == '\n') || line[0] == '\0')
            continue;
        if (lc.lineno == 1 && strncmp(line, header, strlen(header)) == 0)
            continue;
        int got = split_tabs(&lc, line);
        if (got != n_fields) {
            snprintf(err, errlen, "%s:%zu: expected %d tab-separated fields, got %d%s", path,
                     lc.lineno, n_fields, got, got > MAX_FIELDS ? " or more" : "");
            rc = CASCADE_EFORMAT;
            goto out;
        }
        if ((rc = parse(&lc, ds)) != 0) {
            if (rc == CASCADE_ENOMEM)
                snprintf(err, errlen, "%s:%zu: out of memory", path, lc.lineno);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = CASCADE_EIO;
    }
out:
    free(line);
    fclose(f);
    return rc;
}

/* A day partition's name: YYYY-MM-DD.tsv. */
static bool partition_name(const char *name)
{
    static const char shape[] = "dddd-dd-dd.tsv";
    if (strlen(name) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (name[i] < '0' || name[i] > '9') : name[i] != shape[i])
            return false;
    return true;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How much of partition `name` (events/YYYY-MM-DD.tsv) to read: -1 = all
 * without limits, else the date's length in limits, 0 when not listed. */
static int64_t partition_limit(const char *name, const struct cascade_ds_partition_limits *limits)
{
    if (limits == NULL)
        return -1;
    const char *date = name + strlen("events/");
    for (size_t i = 0; i < limits->n; i++)
        if (strncmp(limits->dates[i].date, date, 10) == 0)
            return limits->dates[i].bytes;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The day partitions dir/events/YYYY-MM-DD.tsv as "events/YYYY-MM-DD.tsv",
 * sorted (oldest day first), into *out (free with free_names). No
 * directory: none. */
static int list_partitions(const char *dir, char ***out, size_t *n_out, char *err, size_t errlen)
{
    char sub[4096];
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    *n_out = 0;
    snprintf(sub, sizeof sub, "%s/events", dir);
    DIR *d = opendir(sub);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        snprintf(err, errlen, "%s: %s", sub, strerror(errno));
        return CASCADE_EIO;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!partition_name(e->d_name))
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (grown == NULL) {
                rc = CASCADE_ENOMEM;
                goto out;
            }
            names = grown;
        }
        if ((names[n] = malloc(strlen("events/") + strlen(e->d_name) + 1)) == NULL) {
            rc = CASCADE_ENOMEM;
            goto out;
        }
        sprintf(names[n++], "events/%s", e->d_name);
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_name);
out:
    closedir(d);
    if (rc != 0) {
        snprintf(err, errlen, "%s: out of memory listing the partitions", sub);
        free_names(names, n);
        return rc;
    }
    *out = names;
    *n_out = n;
    return 0;
}

int cascade_dataset_partition_sizes(const char *dir, struct cascade_ds_partition_limit **out,
                                    size_t *n_out, char *err, size_t errlen)
{
    char **names = NULL, path[4200];
    size_t n = 0;
    int rc;
    *out = NULL;
    *n_out = 0;
    if ((rc = list_partitions(dir, &names, &n, err, errlen)) != 0 || n == 0)
        return rc;
    struct cascade_ds_partition_limit *sizes = calloc(n, sizeof *sizes);
    if (sizes == NULL) {
        snprintf(err, errlen, "%s/events: out of memory", dir);
        rc = CASCADE_ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0) {
            if (errno == ENOENT)
                continue; /* removed since the listing */
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = CASCADE_EIO;
            goto out;
        }
        memcpy(sizes[k].date, names[i] + strlen("events/"), 10);
        sizes[k].date[10] = '\0';
        sizes[k++].bytes = (int64_t)st.st_size;
    }
    *out = sizes;
    *n_out = k;
    sizes = NULL;
out:
    free(sizes);
    free_names(names, n);
    return rc;
}

/* Read the day partitions dir/events/YYYY-MM-DD.tsv that cascade-consumer
 * appends (docs/closed-loop.md), oldest day first, as more of events.tsv,
 * each up to its limit (NULL: whole). No directory: nothing to read. */
static int read_partitions(const char *dir, const struct cascade_ds_partition_limits *limits,
                           cascade_dataset *ds, char *err, size_t errlen)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_partitions(dir, &names, &n, err, errlen);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_tsv(dir, names[i], events_header, 5, parse_event_line,
                      partition_limit(names[i], limits), ds, err, errlen);
    if (rc == 0)
        ds->partitions = n;
    free_names(names, n);
    return rc;
}

static void write_items(FILE *f, const void *ctx);

int cascade_dataset_read_online_items(cascade_dataset *ds, const char *dir, char *err,
                                      size_t errlen)
{
    int rc = read_tsv(dir, CASCADE_DS_ONLINE_ITEMS, items_header, 9, parse_online_item_line, -1, ds,
                      err, errlen);
    return rc == CASCADE_ENOTFOUND ? 0 : rc;
}

int cascade_dataset_write_items(const cascade_dataset *ds, const char *dir, const char *name,
                                char *err, size_t errlen)
{
    return cascade_dataset__write_tsv(dir, name, write_items, ds, err, errlen);
}

int cascade_dataset_read(const char *dir, cascade_dataset **out, char *err, size_t errlen)
{
    return cascade_dataset_read_until(dir, NULL, out, err, errlen);
}

int cascade_dataset_read_until(const char *dir, const struct cascade_ds_partition_limits *limits,
                               cascade_dataset **out, char *err, size_t errlen)
{
    int rc;
    cascade_dataset *ds = cascade_dataset_create();
    *out = NULL;
    if (!ds) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return CASCADE_ENOMEM;
    }
    if ((rc = read_tsv(dir, "users.tsv", users_header, 6, parse_user_line, -1, ds, err, errlen)) ||
        (rc = read_tsv(dir, "items.tsv", items_header, 9, parse_item_line, -1, ds, err, errlen)) ||
        (rc = cascade_dataset_read_online_items(ds, dir, err, errlen)) ||
        (rc = read_tsv(dir, "events.tsv", events_header, 5, parse_event_line, -1, ds, err,
                       errlen)) ||
        (rc = read_partitions(dir, limits, ds, err, errlen)))
        goto fail;
    if ((rc = cascade_dataset_sort_events(ds)) != 0) {
        snprintf(err, errlen, "%s: out of memory sorting %zu events", dir, ds->n_events);
        goto fail;
    }
    *out = ds;
    return 0;
fail:
    cascade_dataset_destroy(ds);
    return rc;
}

/* ---- TSV writing ---- */

static void write_list(FILE *f, const uint32_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "%s%" PRIu32, i ? "," : "", v[i]);
}

static void write_users(FILE *f, const void *ctx)
{
    const cascade_dataset *ds = ctx;
    fprintf(f, "%s\n", users_header);
    for (size_t i = 0; i < ds->n_users; i++) {
        const struct cascade_ds_user *u = &ds->users[i];
        fprintf(f, "%s\t%" PRIu32 "\t%" PRIu32 "\t%" PRIu32 "\t%s\t", u->id, u->age, u->gender,
                u->city, u->geohash);
        write_list(f, u->interests, u->n_interests);
        fputc('\n', f);
    }
}

static void write_items(FILE *f, const void *ctx)
{
    const cascade_dataset *ds = ctx;
    fprintf(f, "%s\n", items_header);
    for (size_t i = 0; i < ds->n_items; i++) {
        const struct cascade_ds_item *it = &ds->items[i];
        fprintf(f, "%" PRIu64 "\t%" PRIu64 "\t%" PRIu32 "\t", it->id, it->author_id, it->category);
        write_list(f, it->tags, it->n_tags);
        fprintf(f, "\t%" PRId64 "\t%s\t%" PRIu32 "\t%" PRIu32 "\t%.6g\n", it->created_at,
                it->geohash, it->city, it->media_type, (double)it->duration_s);
    }
}

static void write_events(FILE *f, const void *ctx)
{
    const cascade_dataset *ds = ctx;
    fprintf(f, "%s\n", events_header);
    for (size_t i = 0; i < ds->n_events; i++) {
        const struct cascade_ds_event *e = &ds->events[i];
        const char *type = cascade_event_type_name(e->type);
        fprintf(f, "%" PRId64 "\t%s\t%" PRIu64 "\t%s\t%.6g\n", e->ts, ds->users[e->user].id,
                ds->items[e->item].id, type ? type : "unknown", (double)e->value);
    }
}

/* Write one file through path.tmp + rename so readers never see half a file. */
int cascade_dataset__write_tsv(const char *dir, const char *name,
                               void (*body)(FILE *f, const void *ctx), const void *ctx, char *err,
                               size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    /* A temporary name of this writer's own, so that two writers of the same
     * file (two jobs exporting online items) never rename each other's. */
    snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = NULL;
    if (fd < 0 || fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "w"))) {
        snprintf(err, errlen, "%s: %s", fd < 0 ? path : tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return CASCADE_EIO;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    body(f, ctx);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return CASCADE_EIO;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        return CASCADE_EIO;
    }
    return 0;
}

int cascade_dataset_write(const cascade_dataset *ds, const char *dir, char *err, size_t errlen)
{
    int rc;
    if ((rc = cascade_dataset__write_tsv(dir, "users.tsv", write_users, ds, err, errlen)) ||
        (rc = cascade_dataset__write_tsv(dir, "items.tsv", write_items, ds, err, errlen)) ||
        (rc = cascade_dataset__write_tsv(dir, "events.tsv", write_events, ds, err, errlen)))
        return rc;
    return 0;
}

int cascade_mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", buf, strerror(errno));
            return CASCADE_EIO;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", path);
        return CASCADE_EIO;
    }
    return 0;
}
