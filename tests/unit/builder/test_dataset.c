/* Unit tests for the canonical TSV data set: round trips, the reader's
 * file:line error messages, event sorting, ids missing from the profile
 * files, behaviour weights, and the cascade-build command line's exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "build_cli.h"
#include "dataset.h"
#include "error.h"
#include "support.h"

static const char *users_tsv = "user_id\tage\tgender\tcity\tgeohash\tinterests\n"
                               "alice\t30\t1\t2\twx4g0b\t3,5\n"
                               "bob\t0\t0\t0\t\t\n";
static const char *items_tsv =
    "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\tduration_s\n"
    "10\t7\t3\t1,2\t1700000000\twx4g0\t2\t2\t42.5\n"
    "11\t8\t5\t\t1700000100\t\t0\t1\t0\n";

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_world(const char *dir, const char *events)
{
    write_file(dir, "users.tsv", users_tsv);
    write_file(dir, "items.tsv", items_tsv);
    write_file(dir, "events.tsv", events);
}

static void test_read_and_round_trip(void **state)
{
    (void)state;
    char d1[256], d2[256], err[512];
    cascade_dataset *ds = NULL, *back = NULL;
    assert_non_null(test_tempdir(d1, sizeof(d1)));
    assert_non_null(test_tempdir(d2, sizeof(d2)));
    write_world(d1, "ts\tuser_id\titem_id\ttype\tvalue\n"
                    "1700000200\talice\t10\timpression\t0\n"
                    "1700000201\talice\t10\tclick\t0\n"
                    "1700000230\talice\t10\tplay\t12.5\n"
                    "1700000300\tbob\t11\timpression\t0\n");
    assert_int_equal(cascade_dataset_read(d1, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_users, 2);
    assert_int_equal(ds->n_items, 2);
    assert_int_equal(ds->n_events, 4);
    const struct cascade_ds_user *a = &ds->users[cascade_dataset_find_user(ds, "alice")];
    assert_int_equal(a->age, 30);
    assert_int_equal(a->n_interests, 2);
    assert_int_equal(a->interests[1], 5);
    assert_string_equal(a->geohash, "wx4g0b");
    const struct cascade_ds_item *it = &ds->items[cascade_dataset_find_item(ds, 10)];
    assert_int_equal(it->author_id, 7);
    assert_int_equal(it->n_tags, 2);
    assert_true(it->duration_s == 42.5f);
    assert_int_equal(ds->items[cascade_dataset_find_item(ds, 11)].n_tags, 0);
    assert_int_equal(ds->events[2].type, CASCADE_EV_PLAY);
    assert_true(ds->events[2].value == 12.5f);
    assert_int_equal(cascade_dataset_last_ts(ds), 1700000300);

    /* Written and read again, the data set is the same. */
    assert_int_equal(cascade_dataset_write(ds, d2, err, sizeof(err)), 0);
    assert_int_equal(cascade_dataset_read(d2, &back, err, sizeof(err)), 0);
    assert_int_equal(back->n_users, ds->n_users);
    assert_memory_equal(back->users, ds->users, sizeof(*ds->users) * ds->n_users);
    assert_memory_equal(back->items, ds->items, sizeof(*ds->items) * ds->n_items);
    assert_memory_equal(back->events, ds->events, sizeof(*ds->events) * ds->n_events);
    cascade_dataset_destroy(ds);
    cascade_dataset_destroy(back);
    cascade_dataset_destroy(NULL);
    test_rmdir(d1);
    test_rmdir(d2);
}

/* Reading fails with err containing want. */
static void expect_error(const char *dir, const char *events, int code, const char *want)
{
    char err[512] = "";
    cascade_dataset *ds = (cascade_dataset *)1;
    write_world(dir, events);
    assert_int_equal(cascade_dataset_read(dir, &ds, err, sizeof(err)), code);
    assert_null(ds);
    if (!strstr(err, want))
        fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_malformed_lines_name_file_and_line(void **state)
{
    (void)state;
    char d[256];
    assert_non_null(test_tempdir(d, sizeof(d)));
    const char *hdr = "ts\tuser_id\titem_id\ttype\tvalue\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s1\talice\t10\timpression\t0\n1\talice\t10\n", hdr);
    expect_error(d, buf, CASCADE_EFORMAT, "events.tsv:3: expected 5 tab-separated fields, got 3");
    snprintf(buf, sizeof(buf), "%s1\talice\t10\tpurchase\t0\n", hdr);
    expect_error(d, buf, CASCADE_EFORMAT, "events.tsv:2: field type");
    snprintf(buf, sizeof(buf), "%sabc\talice\t10\tclick\t0\n", hdr);
    expect_error(d, buf, CASCADE_EFORMAT, "events.tsv:2: field ts: expected an integer, got 'abc'");
    snprintf(buf, sizeof(buf), "%s1\talice\t-3\tclick\t0\n", hdr);
    expect_error(d, buf, CASCADE_EFORMAT, "field item_id");

    /* Profile files are checked the same way. */
    write_file(d, "events.tsv", hdr);
    write_file(
        d, "items.tsv",
        "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\tduration_s\n"
        "10\t7\t3\t1,x\t0\t\t0\t1\t0\n");
    char err[512];
    cascade_dataset *ds = NULL;
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "items.tsv:2: field tags"));
    write_file(d, "items.tsv", items_tsv);
    write_file(d, "users.tsv", "alice\t30\t1\t2\tAAAA\t\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "users.tsv:1: field geohash"));
    write_file(d, "users.tsv", "alice\t30\t1\t2\t\t\nalice\t31\t1\t2\t\t\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), CASCADE_EFORMAT);
    assert_non_null(strstr(err, "users.tsv:2: duplicate user_id 'alice'"));

    /* A missing file names itself. */
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nope", d);
    assert_int_equal(cascade_dataset_read(missing, &ds, err, sizeof(err)), CASCADE_ENOTFOUND);
    assert_non_null(strstr(err, "nope/users.tsv"));
    test_rmdir(d);
}

static void test_unsorted_unknown_and_implicit(void **state)
{
    (void)state;
    char d[256], err[512];
    cascade_dataset *ds = NULL;
    assert_non_null(test_tempdir(d, sizeof(d)));
    write_world(d, "ts\tuser_id\titem_id\ttype\tvalue\n"
                   "300\tcarol\t10\timpression\t0\n"
                   "100\talice\t10\timpression\t0\n"
                   "200\talice\t99\tclick\t0\n"
                   "100\tbob\t11\timpression\t0\n"
                   "\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_events, 3);
    assert_int_equal(ds->unknown_item_events, 1); /* item 99 is not in items.tsv */
    assert_int_equal(ds->implicit_users, 1);      /* carol has no profile line */
    assert_int_equal(ds->n_users, 3);
    /* Sorted by time, ties in file order. */
    assert_int_equal(ds->events[0].ts, 100);
    assert_string_equal(ds->users[ds->events[0].user].id, "alice");
    assert_string_equal(ds->users[ds->events[1].user].id, "bob");
    assert_int_equal(ds->events[2].ts, 300);
    cascade_dataset_destroy(ds);
    test_rmdir(d);
}

/* cascade-consumer's day partitions (events/YYYY-MM-DD.tsv) are read after
 * events.tsv, oldest day first, and sorted in with it; other files there are
 * ignored; a bad line names the partition file. */
static void test_day_partitions(void **state)
{
    (void)state;
    char d[256], sub[300], err[512];
    cascade_dataset *ds = NULL;
    assert_non_null(test_tempdir(d, sizeof(d)));
    write_world(d, "ts\tuser_id\titem_id\ttype\tvalue\n"
                   "100\talice\t10\timpression\t0\n");
    snprintf(sub, sizeof sub, "%s/events", d);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file(d, "events/2026-12-06.tsv", "400\tdave\t11\tclick\t0\n");
    write_file(d, "events/2026-12-05.tsv",
               "300\talice\t11\tlike\t0\n"
               "350\tbob\t10\tplay\t12.5\n");
    write_file(d, "events/notes.txt", "not a partition\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->partitions, 2);
    assert_int_equal(ds->n_events, 4);
    assert_int_equal(ds->implicit_users, 1); /* dave: only in a partition */
    int64_t want_ts[] = {100, 300, 350, 400};
    const char *want_user[] = {"alice", "alice", "bob", "dave"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ds->events[i].ts, want_ts[i]);
        assert_string_equal(ds->users[ds->events[i].user].id, want_user[i]);
    }
    assert_true(ds->events[2].value == 12.5f);
    cascade_dataset_destroy(ds);

    write_file(d, "events/2026-12-07.tsv", "500\tdave\t11\n");
    assert_int_not_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_null(ds);
    assert_non_null(strstr(err, "events/2026-12-07.tsv:1: expected 5 tab-separated fields"));
    test_rmdir(d);
}

/* items.online.tsv (the build's export of {ns}:items:online): a new id is
 * added, a known one takes the online row in place, and events on the new
 * item are kept (they would be dropped as unknown without the file). */
static void test_online_items(void **state)
{
    (void)state;
    char d[256], err[512];
    cascade_dataset *ds = NULL;
    assert_non_null(test_tempdir(d, sizeof(d)));
    write_world(d, "ts\tuser_id\titem_id\ttype\tvalue\n"
                   "100\talice\t12\tclick\t0\n"
                   "200\tbob\t10\tclick\t0\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->n_items, 2);
    assert_int_equal(ds->n_events, 1);
    assert_int_equal(ds->unknown_item_events, 1);
    assert_int_equal(ds->online_items, 0);
    cascade_dataset_destroy(ds);

    write_file(d, CASCADE_DS_ONLINE_ITEMS,
               "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\t"
               "duration_s\n"
               "12\t9\t4\t6\t1700000200\tu4pru\t3\t1\t0\n"
               "10\t7\t3\t1,2\t1700000000\twx4g0\t5\t2\t42.5\n");
    assert_int_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_int_equal(ds->online_items, 2);
    assert_int_equal(ds->n_items, 3);
    assert_int_equal(ds->n_events, 2);
    assert_int_equal(ds->unknown_item_events, 0);
    long at = cascade_dataset_find_item(ds, 12);
    assert_int_equal(at, 2);
    assert_int_equal(ds->items[at].author_id, 9);
    assert_string_equal(ds->items[at].geohash, "u4pru");
    at = cascade_dataset_find_item(ds, 10);
    assert_int_equal(at, 0);                 /* replaced in place */
    assert_int_equal(ds->items[at].city, 5); /* the online row's city, not items.tsv's 2 */
    assert_int_equal(ds->events[0].item, 2);
    cascade_dataset_destroy(ds);
    write_file(d, CASCADE_DS_ONLINE_ITEMS, "12\t9\t4\tx\t0\t\t0\t1\t0\n");
    assert_int_not_equal(cascade_dataset_read(d, &ds, err, sizeof(err)), 0);
    assert_null(ds);
    assert_non_null(strstr(err, CASCADE_DS_ONLINE_ITEMS ":1:"));
    test_rmdir(d);
}

static void test_behaviour_weights(void **state)
{
    (void)state;
    struct cascade_behaviour_weights w;
    char err[256];
    cascade_behaviour_weights_default(&w);
    assert_true(w.w[CASCADE_EV_CLICK] == 1 && w.w[CASCADE_EV_LIKE] == 2 &&
                w.w[CASCADE_EV_COLLECT] == 3 && w.w[CASCADE_EV_SHARE] == 3 &&
                w.w[CASCADE_EV_FOLLOW] == 4 && w.w[CASCADE_EV_IMPRESSION] == 0 &&
                w.w[CASCADE_EV_PLAY] == 0 && w.w[CASCADE_EV_DISLIKE] == 0);
    assert_int_equal(cascade_behaviour_weights_parse(&w, "click=0.5,play=1", err, sizeof(err)), 0);
    assert_true(w.w[CASCADE_EV_CLICK] == 0.5f && w.w[CASCADE_EV_PLAY] == 1 &&
                w.w[CASCADE_EV_LIKE] == 2);
    assert_int_equal(cascade_behaviour_weights_parse(&w, "purchase=1", err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_non_null(strstr(err, "purchase"));
    assert_int_equal(cascade_behaviour_weights_parse(&w, "click=-1", err, sizeof(err)),
                     CASCADE_EINVAL);
    assert_int_equal(cascade_behaviour_weights_parse(&w, "click", err, sizeof(err)),
                     CASCADE_EINVAL);
}

static int run_cli(int argc, const char **argv)
{
    return cascade_build_main(argc, (char **)argv);
}

static void test_cli_exit_codes(void **state)
{
    (void)state;
    char d[256], models[300];
    assert_non_null(test_tempdir(d, sizeof(d)));
    snprintf(models, sizeof(models), "%s/models", d);
    const char *none[] = {"cascade-build"};
    assert_int_equal(run_cli(1, none), CASCADE_BUILD_EXIT_USAGE);
    const char *unknown[] = {"cascade-build", "frobnicate"};
    assert_int_equal(run_cli(2, unknown), CASCADE_BUILD_EXIT_USAGE);
    const char *help[] = {"cascade-build", "load", "--help"};
    assert_int_equal(run_cli(3, help), CASCADE_BUILD_EXIT_OK);
    const char *no_data[] = {"cascade-build", "train-rank", "--model-dir", models};
    assert_int_equal(run_cli(4, no_data), CASCADE_BUILD_EXIT_USAGE);
    const char *bad_flag[] = {"cascade-build", "itemcf", "--data", d, "--top-k", "many"};
    assert_int_equal(run_cli(6, bad_flag), CASCADE_BUILD_EXIT_USAGE);
    const char *bad_range[] = {"cascade-build", "itemcf", "--data", d, "--top-k", "500"};
    assert_int_equal(run_cli(6, bad_range), CASCADE_BUILD_EXIT_USAGE);
    const char *bad_weights[] = {"cascade-build", "train-rank", "--data",    d,
                                 "--model-dir",   models,       "--weights", "view=1"};
    assert_int_equal(run_cli(8, bad_weights), CASCADE_BUILD_EXIT_USAGE);
    /* Well-formed but the data is not there: a failure, not a usage error. */
    const char *missing[] = {"cascade-build", "train-rank", "--data", d,
                             "--model-dir",   models,       "--quiet"};
    assert_int_equal(run_cli(7, missing), CASCADE_BUILD_EXIT_FAILURE);
    /* `train MODEL` is train-MODEL: the same flag errors and the same job. */
    const char *train_none[] = {"cascade-build", "train"};
    assert_int_equal(run_cli(2, train_none), CASCADE_BUILD_EXIT_USAGE);
    const char *train_bogus[] = {"cascade-build", "train", "gbdt", "--data", d};
    assert_int_equal(run_cli(5, train_bogus), CASCADE_BUILD_EXIT_USAGE);
    const char *train_no_data[] = {"cascade-build", "train", "mmoe", "--model-dir", models};
    assert_int_equal(run_cli(5, train_no_data), CASCADE_BUILD_EXIT_USAGE);
    const char *train_missing[] = {"cascade-build", "train", "rank",   "--data", d,
                                   "--model-dir",   models,  "--quiet"};
    assert_int_equal(run_cli(8, train_missing), CASCADE_BUILD_EXIT_FAILURE);
    const char *import_bad[] = {
        "cascade-build", "import-movielens", "--format", "1m", "--in", d, "--out", d};
    assert_int_equal(run_cli(8, import_bad), CASCADE_BUILD_EXIT_USAGE);
    test_rmdir(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_round_trip),
        cmocka_unit_test(test_malformed_lines_name_file_and_line),
        cmocka_unit_test(test_unsorted_unknown_and_implicit),
        cmocka_unit_test(test_day_partitions),
        cmocka_unit_test(test_online_items),
        cmocka_unit_test(test_behaviour_weights),
        cmocka_unit_test(test_cli_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
