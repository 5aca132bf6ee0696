/* cascade-build import-movielens: convert the MovieLens data sets into the
 * canonical TSVs. ml-latest-small: ratings.csv + movies.csv (RFC 4180 CSV,
 * quoted titles with commas). ml-100k: u.data, u.item, u.user. Each rating
 * becomes an impression and a click at the rating time, plus a like when the
 * rating is 4 or more. Genres map to category ids in a fixed order
 * (docs/data.md): category = first genre, tags = all genres. */
#ifndef CASCADE_BUILDER_MOVIELENS_H
#define CASCADE_BUILDER_MOVIELENS_H

#include <stddef.h>
#include <stdint.h>

enum cascade_ml_format {
    CASCADE_ML_LATEST_SMALL = 1, /* "latest-small" (also any ml-latest* with the same files) */
    CASCADE_ML_100K = 2,         /* "100k" */
};

struct cascade_import_summary {
    size_t users, items, ratings, events, likes;
    size_t skipped_ratings; /* ratings of movies missing from the movie file */
};

/* "latest-small" or "100k"; 0 or CASCADE_EINVAL. */
int cascade_movielens_parse_format(const char *name, enum cascade_ml_format *out);

/* Category id of a MovieLens genre name (1..19), 0 for "(no genres listed)",
 * "unknown" or anything else. "Children's" (ml-100k) equals "Children". */
uint32_t cascade_movielens_genre_id(const char *name);

/* Read in_dir, write users.tsv, items.tsv, events.tsv into out_dir (created
 * if missing). Errors name file and line ("movies.csv:12: unterminated quoted field"). */
int cascade_movielens_import(enum cascade_ml_format fmt, const char *in_dir, const char *out_dir,
                             struct cascade_import_summary *sum, char *err, size_t errlen);

/* Split one CSV line (RFC 4180: "" escapes a quote inside a quoted field)
 * into at most max fields, in place. Returns the field count, or -1 on an
 * unterminated quote. Trailing \r\n is removed. */
int cascade_csv_split(char *line, char **fields, int max);

#endif
