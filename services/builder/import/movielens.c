/* MovieLens importers (ml-latest-small CSVs, ml-100k pipe/tab files) into the
 * canonical data set. Movies become items (category = first genre), users
 * come from the ratings (ml-100k: from u.user with age, gender and a zip
 * region as city), ratings become impression + click (+ like when >= 4). */
#include "movielens.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"
#include "error.h"

#define MAX_FIELDS 32
#define LIKE_THRESHOLD 4.0

/* Category ids 1..19; ml-100k's 19 genre flags are "unknown" then ids 1..18 in this order. */
static const char *const genres[] = {
    NULL,          "Action", "Adventure", "Animation", "Children", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",   "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western",  "IMAX",
};
#define N_GENRES 19

/* One rating, kept until all are read (the item's created_at needs the first one). */
struct rating {
    char user[CASCADE_DS_ID_MAX + 1];
    uint64_t item;
    float stars;
    int64_t ts;
    size_t seq; /* position in the input, for a stable time order */
};

struct ratings {
    struct rating *v;
    size_t n, cap;
};

/* A file being read line by line, for error messages. */
struct reader {
    char path[4096];
    FILE *f;
    char *line;
    size_t cap;
    size_t lineno;
};

int cascade_movielens_parse_format(const char *name, enum cascade_ml_format *out)
{
    if (strcmp(name, "latest-small") == 0 || strcmp(name, "latest") == 0) {
        *out = CASCADE_ML_LATEST_SMALL;
        return 0;
    }
    if (strcmp(name, "100k") == 0) {
        *out = CASCADE_ML_100K;
        return 0;
    }
    return CASCADE_EINVAL;
}

uint32_t cascade_movielens_genre_id(const char *name)
{
    if (strcmp(name, "Children's") == 0)
        return 4;
    for (uint32_t g = 1; g <= N_GENRES; g++)
        if (strcmp(name, genres[g]) == 0)
            return g;
    return 0;
}

int cascade_csv_split(char *line, char **fields, int max)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0;
    char *p = line;
    for (;;) {
        char *out = p, *start = p;
        if (*p == '"') {
            /* Quoted: copy characters down over the quotes; "" is one quote. */
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *out++ = *p++;
            }
            if (*p != ',' && *p != '\0')
                return -1; /* junk after the closing quote */
        } else {
            while (*p && *p != ',')
                p++;
            out = p;
        }
        char sep = *p;
        *out = '\0';
        if (n < max)
            fields[n] = start;
        n++;
        if (sep == '\0')
            break;
        p++;
    }
    return n;
}

static int reader_open(struct reader *r, const char *dir, const char *name, char *err,
                       size_t errlen)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "%s/%s", dir, name);
    r->f = fopen(r->path, "r");
    if (!r->f) {
        snprintf(err, errlen, "%s: %s", r->path, strerror(errno));
        return errno == ENOENT ? CASCADE_ENOTFOUND : CASCADE_EIO;
    }
    return 0;
}

/* Next non-empty line, or NULL at the end of the file. */
static char *reader_next(struct reader *r)
{
    while (getline(&r->line, &r->cap, r->f) >= 0) {
        r->lineno++;
        if (r->line[0] != '\n' && r->line[0] != '\r' && r->line[0] != '\0')
            return r->line;
    }
    return NULL;
}

static void reader_close(struct reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->line);
    r->f = NULL;
    r->line = NULL;
}

static int line_error(struct reader *r, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s:%zu: %s", r->path, r->lineno, what);
    return CASCADE_EFORMAT;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_stars(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 10))
        return false;
    *out = (float)v;
    return true;
}

/* Unix time of January 1st of the year in a title like "Heat (1995)", or 0. */
static int64_t title_year_ts(const char *title)
{
    const char *p = strrchr(title, '(');
    int year;
    char close;
    if (!p || sscanf(p, "(%4d%c", &year, &close) != 2 || close != ')' || year < 1870 || year > 2100)
        return 0;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = 0, .tm_mday = 1};
    return (int64_t)timegm(&tm);
}

/* "01-Jan-1995" (ml-100k release date) as Unix time, or 0. */
static int64_t release_date_ts(const char *s)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int day, year;
    char mon[4];
    if (sscanf(s, "%d-%3s-%d", &day, mon, &year) != 3)
        return 0;
    for (int m = 0; m < 12; m++) {
        if (strcmp(mon, months[m]) == 0) {
            struct tm tm = {.tm_year = year - 1900, .tm_mon = m, .tm_mday = day};
            return (int64_t)timegm(&tm);
        }
    }
    return 0;
}

static int ratings_add(struct ratings *rs, const char *user, uint64_t item, float stars, int64_t ts)
{
    if (rs->n == rs->cap) {
        size_t ncap = rs->cap ? rs->cap * 2 : 4096;
        struct rating *v = realloc(rs->v, ncap * sizeof(*v));
        if (!v)
            return CASCADE_ENOMEM;
        rs->v = v;
        rs->cap = ncap;
    }
    struct rating *r = &rs->v[rs->n++];
    snprintf(r->user, sizeof(r->user), "%s", user);
    r->item = item;
    r->stars = stars;
    r->ts = ts;
    r->seq = rs->n - 1;
    return 0;
}

/* ---- ml-latest-small ---- */

/* movies.csv: movieId,title,genres (genres separated by '|'). */
static int read_movies_csv(const char *dir, cascade_dataset *ds, char *err, size_t errlen)
{
    struct reader r;
    char *f[MAX_FIELDS];
    int rc = reader_open(&r, dir, "movies.csv", err, errlen);
    for (char *line; rc == 0 && (line = reader_next(&r));) {
        int n = cascade_csv_split(line, f, MAX_FIELDS);
        if (n < 0) {
            rc = line_error(&r, err, errlen, "unterminated or malformed quoted field");
            break;
        }
        if (r.lineno == 1 && n >= 1 && strcmp(f[0], "movieId") == 0)
            continue;
        if (n != 3) {
            char what[96];
            snprintf(what, sizeof(what),
                     "expected 3 comma-separated fields (movieId,title,genres), got %d", n);
            rc = line_error(&r, err, errlen, what);
            break;
        }
        struct cascade_ds_item it = {0};
        if (!parse_u64(f[0], &it.id)) {
            rc = line_error(&r, err, errlen, "movieId is not a non-negative integer");
            break;
        }
        it.created_at = title_year_ts(f[1]);
        it.media_type = 2;
        char *save = NULL;
        for (char *g = strtok_r(f[2], "|", &save); g; g = strtok_r(NULL, "|", &save)) {
            uint32_t id = cascade_movielens_genre_id(g);
            if (id && it.n_tags < CASCADE_DS_MAX_TAGS)
                it.tags[it.n_tags++] = id;
        }
        it.category = it.n_tags ? it.tags[0] : 0;
        rc = cascade_dataset_add_item(ds, &it, NULL);
        if (rc == CASCADE_EINVAL)
            rc = line_error(&r, err, errlen, "duplicate movieId");
    }
    reader_close(&r);
    return rc;
}

/* ratings.csv: userId,movieId,rating,timestamp. */
static int read_ratings_csv(const char *dir, struct ratings *rs, char *err, size_t errlen)
{
    struct reader r;
    char *f[MAX_FIELDS];
    int rc = reader_open(&r, dir, "ratings.csv", err, errlen);
    for (char *line; rc == 0 && (line = reader_next(&r));) {
        int n = cascade_csv_split(line, f, MAX_FIELDS);
        if (r.lineno == 1 && n >= 1 && strcmp(f[0], "userId") == 0)
            continue;
        uint64_t item;
        int64_t ts;
        float stars;
        if (n != 4) {
            char what[112];
            snprintf(what, sizeof(what),
                     "expected 4 comma-separated fields (userId,movieId,rating,timestamp), got %d",
                     n);
            rc = line_error(&r, err, errlen, what);
        } else if (f[0][0] == '\0' || strlen(f[0]) > CASCADE_DS_ID_MAX) {
            rc = line_error(&r, err, errlen, "userId must be 1 to 64 characters");
        } else if (!parse_u64(f[1], &item) || !parse_stars(f[2], &stars) || !parse_i64(f[3], &ts)) {
            rc = line_error(&r, err, errlen,
                            "expected integer movieId, numeric rating, integer timestamp");
        } else {
            rc = ratings_add(rs, f[0], item, stars, ts);
        }
    }
    reader_close(&r);
    return rc;
}

/* ---- ml-100k ---- */

/* Split on a single-character separator, in place. */
static int split_on(char *line, char sep, char **fields, int max)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    int n = 0;
    for (char *p = line;;) {
        if (n < max)
            fields[n] = p;
        n++;
        char *s = strchr(p, sep);
        if (!s)
            break;
        *s = '\0';
        p = s + 1;
    }
    return n;
}

/* u.item: id|title|release date|video release date|url|19 genre flags. */
static int read_u_item(const char *dir, cascade_dataset *ds, char *err, size_t errlen)
{
    struct reader r;
    char *f[MAX_FIELDS];
    int rc = reader_open(&r, dir, "u.item", err, errlen);
    for (char *line; rc == 0 && (line = reader_next(&r));) {
        int n = split_on(line, '|', f, MAX_FIELDS);
        struct cascade_ds_item it = {0};
        if (n != 5 + N_GENRES) {
            char what[96];
            snprintf(what, sizeof(what), "expected %d '|'-separated fields, got %d", 5 + N_GENRES,
                     n);
            rc = line_error(&r, err, errlen, what);
            break;
        }
        if (!parse_u64(f[0], &it.id)) {
            rc = line_error(&r, err, errlen, "movie id is not a non-negative integer");
            break;
        }
        it.created_at = release_date_ts(f[2]);
        it.media_type = 2;
        /* Flag 0 is "unknown"; flags 1..18 are category ids 1..18. */
        for (uint32_t g = 1; g < N_GENRES; g++)
            if (strcmp(f[5 + g], "1") == 0 && it.n_tags < CASCADE_DS_MAX_TAGS)
                it.tags[it.n_tags++] = g;
        it.category = it.n_tags ? it.tags[0] : 0;
        rc = cascade_dataset_add_item(ds, &it, NULL);
        if (rc == CASCADE_EINVAL)
            rc = line_error(&r, err, errlen, "duplicate movie id");
    }
    reader_close(&r);
    return rc;
}

/* u.user: id|age|gender|occupation|zip. City = 1 + the zip's first digit
 * (a US region), 0 for non-numeric zips. */
static int read_u_user(const char *dir, cascade_dataset *ds, char *err, size_t errlen)
{
    struct reader r;
    char *f[MAX_FIELDS];
    int rc = reader_open(&r, dir, "u.user", err, errlen);
    for (char *line; rc == 0 && (line = reader_next(&r));) {
        int n = split_on(line, '|', f, MAX_FIELDS);
        struct cascade_ds_user u = {0};
        uint64_t age;
        if (n != 5) {
            char what[64];
            snprintf(what, sizeof(what), "expected 5 '|'-separated fields, got %d", n);
            rc = line_error(&r, err, errlen, what);
            break;
        }
        if (f[0][0] == '\0' || strlen(f[0]) > CASCADE_DS_ID_MAX || !parse_u64(f[1], &age) ||
            age > 200) {
            rc = line_error(&r, err, errlen, "expected a user id and an age in years");
            break;
        }
        snprintf(u.id, sizeof(u.id), "%s", f[0]);
        u.age = (uint32_t)age;
        u.gender = strcmp(f[2], "F") == 0 ? 1 : (strcmp(f[2], "M") == 0 ? 2 : 0);
        u.city = isdigit((unsigned char)f[4][0]) ? (uint32_t)(f[4][0] - '0') + 1 : 0;
        rc = cascade_dataset_add_user(ds, &u, NULL);
        if (rc == CASCADE_EINVAL)
            rc = line_error(&r, err, errlen, "duplicate user id");
    }
    reader_close(&r);
    return rc;
}

/* u.data: user<TAB>item<TAB>rating<TAB>timestamp. */
static int read_u_data(const char *dir, struct ratings *rs, char *err, size_t errlen)
{
    struct reader r;
    char *f[MAX_FIELDS];
    int rc = reader_open(&r, dir, "u.data", err, errlen);
    for (char *line; rc == 0 && (line = reader_next(&r));) {
        int n = split_on(line, '\t', f, MAX_FIELDS);
        uint64_t item;
        int64_t ts;
        float stars;
        if (n != 4) {
            char what[64];
            snprintf(what, sizeof(what), "expected 4 tab-separated fields, got %d", n);
            rc = line_error(&r, err, errlen, what);
        } else if (f[0][0] == '\0' || strlen(f[0]) > CASCADE_DS_ID_MAX || !parse_u64(f[1], &item) ||
                   !parse_stars(f[2], &stars) || !parse_i64(f[3], &ts)) {
            rc = line_error(&r, err, errlen, "expected user id, item id, rating, timestamp");
        } else {
            rc = ratings_add(rs, f[0], item, stars, ts);
        }
    }
    reader_close(&r);
    return rc;
}

/* ---- ratings -> events ---- */

static int cmp_rating_time(const void *a, const void *b)
{
    const struct rating *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Users in order of first appearance (those with a rating of a known movie), items' created_at from
 * their first rating, then impression + click (+ like) per rating in time order. */
static int ratings_to_events(cascade_dataset *ds, struct ratings *rs,
                             struct cascade_import_summary *sum)
{
    int rc = 0;
    for (size_t i = 0; i < rs->n && rc == 0; i++) {
        if (cascade_dataset_find_item(ds, rs->v[i].item) >= 0 &&
            cascade_dataset_find_user(ds, rs->v[i].user) < 0) {
            struct cascade_ds_user u = {0};
            snprintf(u.id, sizeof(u.id), "%s", rs->v[i].user);
            rc = cascade_dataset_add_user(ds, &u, NULL);
        }
    }
    qsort(rs->v, rs->n, sizeof(*rs->v), cmp_rating_time);
    int64_t *first = calloc(ds->n_items + 1, sizeof(int64_t));
    if (!first)
        return CASCADE_ENOMEM;
    for (size_t i = 0; i < rs->n && rc == 0; i++) {
        const struct rating *r = &rs->v[i];
        long item = cascade_dataset_find_item(ds, r->item);
        if (item < 0) {
            sum->skipped_ratings++;
            continue;
        }
        if (!first[item])
            first[item] = r->ts;
        sum->ratings++;
        rc = cascade_dataset_add_event(ds, r->ts, r->user, r->item, CASCADE_EV_IMPRESSION, 0);
        if (rc == 0)
            rc = cascade_dataset_add_event(ds, r->ts, r->user, r->item, CASCADE_EV_CLICK, 0);
        if (rc == 0 && r->stars >= LIKE_THRESHOLD) {
            rc = cascade_dataset_add_event(ds, r->ts, r->user, r->item, CASCADE_EV_LIKE, 0);
            sum->likes++;
        }
    }
    /* The platform "got" a movie when it was first rated; unrated movies keep
     * the date from their title / release date. */
    for (size_t i = 0; i < ds->n_items; i++)
        if (first[i])
            ds->items[i].created_at = first[i];
    free(first);
    return rc;
}

int cascade_movielens_import(enum cascade_ml_format fmt, const char *in_dir, const char *out_dir,
                             struct cascade_import_summary *sum, char *err, size_t errlen)
{
    struct cascade_import_summary local;
    struct ratings rs = {0};
    cascade_dataset *ds = cascade_dataset_create();
    int rc;
    if (!sum)
        sum = &local;
    memset(sum, 0, sizeof(*sum));
    if (!ds) {
        snprintf(err, errlen, "import: out of memory");
        return CASCADE_ENOMEM;
    }
    if (fmt == CASCADE_ML_100K) {
        if ((rc = read_u_item(in_dir, ds, err, errlen)) ||
            (rc = read_u_user(in_dir, ds, err, errlen)) ||
            (rc = read_u_data(in_dir, &rs, err, errlen)))
            goto out;
    } else {
        if ((rc = read_movies_csv(in_dir, ds, err, errlen)) ||
            (rc = read_ratings_csv(in_dir, &rs, err, errlen)))
            goto out;
    }
    if ((rc = ratings_to_events(ds, &rs, sum)) != 0)
        goto out;
    if ((rc = cascade_mkdir_p(out_dir, err, errlen)) ||
        (rc = cascade_dataset_write(ds, out_dir, err, errlen)))
        goto out;
    sum->users = ds->n_users;
    sum->items = ds->n_items;
    sum->events = ds->n_events;
out:
    if (rc == CASCADE_ENOMEM)
        snprintf(err, errlen, "import: out of memory");
    free(rs.v);
    cascade_dataset_destroy(ds);
    return rc;
}
