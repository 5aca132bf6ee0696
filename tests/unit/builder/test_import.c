/* Unit tests for the MovieLens importers on small files written by the test:
 * quoted CSV titles with commas and quotes, the genre mapping, rating ->
 * impression/click/like events, ml-100k profiles, and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataset.h"
#include "error.h"
#include "movielens.h"
#include "support.h"

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static size_t count_type(const cascade_dataset *ds, uint32_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->n_events; i++)
        n += ds->events[i].type == type;
    return n;
}

static void test_csv_split(void **state)
{
    (void)state;
    char line[] = "1,\"Heat, The (1995)\",\"Say \"\"Hi\"\"\",,last\r\n";
    char *f[8];
    assert_int_equal(cascade_csv_split(line, f, 8), 5);
    assert_string_equal(f[0], "1");
    assert_string_equal(f[1], "Heat, The (1995)");
    assert_string_equal(f[2], "Say \"Hi\"");
    assert_string_equal(f[3], "");
    assert_string_equal(f[4], "last");
    char bad[] = "1,\"unterminated,2\n";
    assert_int_equal(cascade_csv_split(bad, f, 8), -1);
}

static void test_genre_ids(void **state)
{
    (void)state;
    assert_int_equal(cascade_movielens_genre_id("Action"), 1);
    assert_int_equal(cascade_movielens_genre_id("Children"), 4);
    assert_int_equal(cascade_movielens_genre_id("Children's"), 4);
    assert_int_equal(cascade_movielens_genre_id("Western"), 18);
    assert_int_equal(cascade_movielens_genre_id("IMAX"), 19);
    assert_int_equal(cascade_movielens_genre_id("(no genres listed)"), 0);
    enum cascade_ml_format f;
    assert_int_equal(cascade_movielens_parse_format("100k", &f), 0);
    assert_int_equal(f, CASCADE_ML_100K);
    assert_int_equal(cascade_movielens_parse_format("1m", &f), CASCADE_EINVAL);
}

static void test_latest_small(void **state)
{
    (void)state;
    char in[256], out[300], err[512];
    struct cascade_import_summary s;
    cascade_dataset *ds = NULL;
    assert_non_null(test_tempdir(in, sizeof(in)));
    snprintf(out, sizeof(out), "%s/out", in);
    write_file(in, "movies.csv",
               "movieId,title,genres\n"
               "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
               "2,\"Heat, The (1995)\",Action|Crime|Thriller\n"
               "3,\"Say \"\"Hi\"\", Again (2001)\",Comedy\n"
               "4,Nothing Rated (1990),(no genres listed)\n");
    write_file(in, "ratings.csv",
               "userId,movieId,rating,timestamp\n"
               "1,2,4.5,1000\n"
               "1,1,3.0,900\n"
               "2,2,2.5,1100\n"
               "2,3,4.0,1100\n"
               "7,99,5.0,1200\n");
    assert_int_equal(
        cascade_movielens_import(CASCADE_ML_LATEST_SMALL, in, out, &s, err, sizeof(err)), 0);
    assert_int_equal(s.items, 4);
    assert_int_equal(s.ratings, 4);
    assert_int_equal(s.skipped_ratings, 1); /* movie 99 does not exist */
    assert_int_equal(s.likes, 2);
    assert_int_equal(s.events, 4 * 2 + 2);

    assert_int_equal(cascade_dataset_read(out, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_items, 4);
    /* Users come from the ratings, without a profile (user 7 only rated a
     * movie that does not exist). */
    assert_int_equal(ds->n_users, 2);
    assert_true(cascade_dataset_find_user(ds, "7") < 0);
    long u1 = cascade_dataset_find_user(ds, "1");
    assert_true(u1 >= 0);
    assert_int_equal(ds->users[u1].age, 0);
    assert_int_equal(ds->users[u1].city, 0);
    const struct cascade_ds_item *heat = &ds->items[cascade_dataset_find_item(ds, 2)];
    assert_int_equal(heat->category, 1); /* Action */
    assert_int_equal(heat->n_tags, 3);
    assert_int_equal(heat->tags[1], 6);       /* Crime */
    assert_int_equal(heat->tags[2], 16);      /* Thriller */
    assert_int_equal(heat->created_at, 1000); /* first rating */
    assert_int_equal(heat->media_type, 2);
    const struct cascade_ds_item *toy = &ds->items[cascade_dataset_find_item(ds, 1)];
    assert_int_equal(toy->category, 2); /* Adventure */
    assert_int_equal(toy->n_tags, 5);
    const struct cascade_ds_item *none = &ds->items[cascade_dataset_find_item(ds, 4)];
    assert_int_equal(none->category, 0);
    assert_int_equal(none->n_tags, 0);
    assert_int_equal(none->created_at, 631152000); /* never rated: 1990-01-01 from the title */
    assert_int_equal(ds->items[cascade_dataset_find_item(ds, 3)].category, 5); /* Comedy */

    assert_int_equal(count_type(ds, CASCADE_EV_IMPRESSION), 4);
    assert_int_equal(count_type(ds, CASCADE_EV_CLICK), 4);
    assert_int_equal(count_type(ds, CASCADE_EV_LIKE), 2);
    /* In time order; each rating's impression comes before its click. */
    assert_int_equal(ds->events[0].ts, 900);
    assert_int_equal(ds->events[0].type, CASCADE_EV_IMPRESSION);
    assert_int_equal(ds->events[1].type, CASCADE_EV_CLICK);
    assert_int_equal(ds->events[2].ts, 1000);
    assert_int_equal(ds->events[4].type, CASCADE_EV_LIKE);
    cascade_dataset_destroy(ds);
    test_rmdir(in);
}

static void test_ml_100k(void **state)
{
    (void)state;
    char in[256], out[300], err[512];
    struct cascade_import_summary s;
    cascade_dataset *ds = NULL;
    assert_non_null(test_tempdir(in, sizeof(in)));
    snprintf(out, sizeof(out), "%s/out", in);
    /* 5 fields then 19 flags: unknown, Action, Adventure, Animation, Children's, Comedy, ... */
    write_file(in, "u.item",
               "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
               "2|GoldenEye (1995)|01-Jan-1995||http://y|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
               "3|Unrated (1996)|15-Mar-1996||http://z|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
    write_file(in, "u.user", "1|24|M|technician|85711\n2|53|F|other|T8H1N\n");
    write_file(in, "u.data", "1\t1\t5\t881250949\n2\t2\t3\t881250900\n1\t2\t4\t881251000\n");
    assert_int_equal(cascade_movielens_import(CASCADE_ML_100K, in, out, &s, err, sizeof(err)), 0);
    assert_int_equal(s.users, 2);
    assert_int_equal(s.items, 3);
    assert_int_equal(s.ratings, 3);
    assert_int_equal(s.likes, 2);
    assert_int_equal(cascade_dataset_read(out, &ds, err, sizeof(err)), 0);
    const struct cascade_ds_user *u1 = &ds->users[cascade_dataset_find_user(ds, "1")];
    const struct cascade_ds_user *u2 = &ds->users[cascade_dataset_find_user(ds, "2")];
    assert_int_equal(u1->age, 24);
    assert_int_equal(u1->gender, 2);
    assert_int_equal(u1->city, 9); /* zip 8xxxx -> region 8 -> city 9 */
    assert_int_equal(u2->gender, 1);
    assert_int_equal(u2->city, 0); /* not a US zip */
    const struct cascade_ds_item *toy = &ds->items[cascade_dataset_find_item(ds, 1)];
    assert_int_equal(toy->category, 3); /* Animation */
    assert_int_equal(toy->n_tags, 3);   /* Animation, Children, Comedy */
    assert_int_equal(toy->tags[1], 4);
    const struct cascade_ds_item *ge = &ds->items[cascade_dataset_find_item(ds, 2)];
    assert_int_equal(ge->category, 1);
    assert_int_equal(ge->tags[2], 16); /* Thriller */
    assert_int_equal(ge->created_at, 881250900);
    const struct cascade_ds_item *unrated = &ds->items[cascade_dataset_find_item(ds, 3)];
    assert_int_equal(unrated->category, 0);           /* only the "unknown" flag */
    assert_int_equal(unrated->created_at, 826848000); /* 15-Mar-1996, the release date */
    assert_int_equal(ds->n_events, 3 * 2 + 2);
    cascade_dataset_destroy(ds);
    test_rmdir(in);
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    char in[256], out[300], err[512];
    assert_non_null(test_tempdir(in, sizeof(in)));
    snprintf(out, sizeof(out), "%s/out", in);
    write_file(in, "movies.csv",
               "movieId,title,genres\n1,Fine (1995),Drama\n2,\"Broken (1995),Drama\n");
    write_file(in, "ratings.csv", "userId,movieId,rating,timestamp\n");
    assert_int_equal(
        cascade_movielens_import(CASCADE_ML_LATEST_SMALL, in, out, NULL, err, sizeof(err)),
        CASCADE_EFORMAT);
    assert_non_null(strstr(err, "movies.csv:3:"));
    write_file(in, "movies.csv", "movieId,title,genres\n1,Fine (1995),Drama\n");
    write_file(in, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0\n");
    assert_int_equal(
        cascade_movielens_import(CASCADE_ML_LATEST_SMALL, in, out, NULL, err, sizeof(err)),
        CASCADE_EFORMAT);
    assert_non_null(strstr(err, "ratings.csv:2: expected 4 comma-separated fields"));
    write_file(in, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,great,5\n");
    assert_int_equal(
        cascade_movielens_import(CASCADE_ML_LATEST_SMALL, in, out, NULL, err, sizeof(err)),
        CASCADE_EFORMAT);
    assert_non_null(strstr(err, "ratings.csv:2:"));
    /* ml-100k files missing: the error names the file. */
    assert_int_equal(cascade_movielens_import(CASCADE_ML_100K, in, out, NULL, err, sizeof(err)),
                     CASCADE_ENOTFOUND);
    assert_non_null(strstr(err, "u.item"));
    test_rmdir(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_split),
        cmocka_unit_test(test_genre_ids),
        cmocka_unit_test(test_latest_small),
        cmocka_unit_test(test_ml_100k),
        cmocka_unit_test(test_errors_name_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
