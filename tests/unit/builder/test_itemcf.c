/* Unit tests for ItemCF: cosine similarities on a hand-computed 3-user /
 * 4-item example, top-k order and truncation, the per-user history cap,
 * thread-count independence, and the lists as published in a real Redis
 * (family "itemcf", {ns}:itemcf@{gen}:{id}). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_test.h"
#include "datagen.h"
#include "dataset.h"
#include "error.h"
#include "cf_publish.h"
#include "itemcf.h"
#include "store.h"
#include "support.h"

enum { A = 101, B = 102, C = 103, D = 104 };

static void ev(cascade_dataset *ds, int64_t ts, const char *user, uint64_t item, uint32_t type)
{
    assert_int_equal(cascade_dataset_add_event(ds, ts, user, item, type, 0), 0);
}

/* Interest vectors over users (u1, u2, u3) with click 1, like 2, collect 3:
 *   A = (3, 1, 0)   u1 click+like, u2 click
 *   B = (1, 1, 0)   u1 clicks twice (counts once), u2 click
 *   C = (0, 1, 4)   u2 click, u3 click+collect
 *   D = (0, 0, 1)   u3 click
 * Impressions carry no interest. */
static cascade_dataset *hand_world(void)
{
    cascade_dataset *ds = cascade_dataset_create();
    assert_non_null(ds);
    cf_test_add_user(ds, "u1");
    cf_test_add_user(ds, "u2");
    cf_test_add_user(ds, "u3");
    cf_test_add_item(ds, A);
    cf_test_add_item(ds, B);
    cf_test_add_item(ds, C);
    cf_test_add_item(ds, D);
    ev(ds, 10, "u1", A, CASCADE_EV_IMPRESSION);
    ev(ds, 11, "u1", A, CASCADE_EV_CLICK);
    ev(ds, 12, "u1", A, CASCADE_EV_LIKE);
    ev(ds, 13, "u1", B, CASCADE_EV_CLICK);
    ev(ds, 14, "u1", B, CASCADE_EV_CLICK);
    ev(ds, 15, "u1", D, CASCADE_EV_IMPRESSION);
    ev(ds, 20, "u2", A, CASCADE_EV_CLICK);
    ev(ds, 21, "u2", B, CASCADE_EV_CLICK);
    ev(ds, 22, "u2", C, CASCADE_EV_CLICK);
    ev(ds, 30, "u3", C, CASCADE_EV_CLICK);
    ev(ds, 31, "u3", C, CASCADE_EV_COLLECT);
    ev(ds, 32, "u3", D, CASCADE_EV_CLICK);
    return ds;
}

/* Neighbour t of item id: its item id and score. */
static uint64_t nbr_id(const cascade_dataset *ds, const struct cascade_cf_lists *r, uint64_t id,
                       size_t t, float *score)
{
    long i = cascade_dataset_find_item(ds, id);
    assert_true(i >= 0 && t < r->count[i]);
    *score = r->score[(size_t)i * r->k + t];
    return ds->items[r->nbr[(size_t)i * r->k + t]].id;
}

static uint32_t nbr_count(const cascade_dataset *ds, const struct cascade_cf_lists *r, uint64_t id)
{
    return r->count[cascade_dataset_find_item(ds, id)];
}

#define NEAR(x, y) assert_true(fabs((double)(x) - (double)(y)) < 1e-5)

static void test_hand_computed_cosine(void **state)
{
    (void)state;
    cascade_dataset *ds = hand_world();
    struct cascade_itemcf_opts o;
    struct cascade_cf_lists r;
    char err[256];
    float s;
    cascade_itemcf_defaults(&o);
    o.quiet = true;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r, err, sizeof(err)), 0);
    /* A: B = 4/sqrt(10·2), C = 1/sqrt(10·17); D shares no user. */
    assert_int_equal(nbr_count(ds, &r, A), 2);
    assert_int_equal(nbr_id(ds, &r, A, 0, &s), B);
    NEAR(s, 4 / sqrt(20.0));
    assert_int_equal(nbr_id(ds, &r, A, 1, &s), C);
    NEAR(s, 1 / sqrt(170.0));
    /* B: A then C = 1/sqrt(2·17). */
    assert_int_equal(nbr_count(ds, &r, B), 2);
    assert_int_equal(nbr_id(ds, &r, B, 0, &s), A);
    assert_int_equal(nbr_id(ds, &r, B, 1, &s), C);
    NEAR(s, 1 / sqrt(34.0));
    /* C: D = 4/sqrt(17), then B, then A (best first). */
    assert_int_equal(nbr_count(ds, &r, C), 3);
    assert_int_equal(nbr_id(ds, &r, C, 0, &s), D);
    NEAR(s, 4 / sqrt(17.0));
    assert_int_equal(nbr_id(ds, &r, C, 1, &s), B);
    NEAR(s, 1 / sqrt(34.0));
    assert_int_equal(nbr_id(ds, &r, C, 2, &s), A);
    NEAR(s, 1 / sqrt(170.0));
    /* D: only C. */
    assert_int_equal(nbr_count(ds, &r, D), 1);
    assert_int_equal(nbr_id(ds, &r, D, 0, &s), C);
    cascade_cf_lists_free(&r);

    /* top-k 2 keeps C's two best, in order. */
    o.top_k = 2;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r, err, sizeof(err)), 0);
    assert_int_equal(nbr_count(ds, &r, C), 2);
    assert_int_equal(nbr_id(ds, &r, C, 0, &s), D);
    assert_int_equal(nbr_id(ds, &r, C, 1, &s), B);
    cascade_cf_lists_free(&r);

    /* Keeping only each user's most recent item leaves no co-occurrence. */
    o.top_k = 10;
    o.max_items_per_user = 1;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r, err, sizeof(err)), 0);
    for (uint64_t id = A; id <= D; id++)
        assert_int_equal(nbr_count(ds, &r, id), 0);
    cascade_cf_lists_free(&r);

    /* Other weights change the similarities: with like = 0, A = (1, 1, 0) = B. */
    o.max_items_per_user = 200;
    assert_int_equal(cascade_behaviour_weights_parse(&o.weights, "like=0", err, sizeof(err)), 0);
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r, err, sizeof(err)), 0);
    assert_int_equal(nbr_id(ds, &r, A, 0, &s), B);
    NEAR(s, 1.0);
    cascade_cf_lists_free(&r);

    o.top_k = 0;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r, err, sizeof(err)), CASCADE_EINVAL);
    assert_non_null(strstr(err, "top-k"));
    cascade_dataset_destroy(ds);
}

static void test_threads_do_not_change_results(void **state)
{
    (void)state;
    cascade_dataset *ds = cf_test_generated_world(1500, 20000, 3);
    char err[256];
    struct cascade_itemcf_opts o;
    struct cascade_cf_lists r1, r2;
    cascade_itemcf_defaults(&o);
    o.quiet = true;
    o.top_k = 20;
    o.threads = 1;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r1, err, sizeof(err)), 0);
    o.threads = 3;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &r2, err, sizeof(err)), 0);
    assert_memory_equal(r1.count, r2.count, sizeof(uint32_t) * r1.n);
    size_t with_lists = 0;
    for (size_t i = 0; i < r1.n; i++) {
        with_lists += r1.count[i] > 0;
        assert_memory_equal(r1.nbr + i * r1.k, r2.nbr + i * r2.k, sizeof(uint32_t) * r1.count[i]);
        assert_memory_equal(r1.score + i * r1.k, r2.score + i * r2.k, sizeof(float) * r1.count[i]);
        for (uint32_t t = 0; t < r1.count[i]; t++) {
            float sc = r1.score[i * r1.k + t];
            assert_true(sc > 0 && sc <= 1.0001f);
            assert_int_not_equal(r1.nbr[i * r1.k + t], i); /* never its own neighbour */
            if (t)
                assert_true(sc <= r1.score[i * r1.k + t - 1]);
        }
    }
    assert_true(with_lists > r1.n / 2);
    cascade_cf_lists_free(&r1);
    cascade_cf_lists_free(&r2);
    cascade_dataset_destroy(ds);
}

/* GET and decode {ns}:itemcf@{gen}:{id}; false when the key is absent. */
static bool get_list(cascade_redis *r, int64_t gen, uint64_t id, cascade_v1_NeighbourList *out)
{
    char key[CASCADE_KEY_MAX], suffix[32];
    redisReply *rep = NULL;
    snprintf(suffix, sizeof(suffix), "%llu", (unsigned long long)id);
    cascade_key_artefact(key, "t", "itemcf", gen, suffix);
    assert_int_equal(cascade_redis_command(r, &rep, "GET %s", key), 0);
    bool found = rep->type == REDIS_REPLY_STRING;
    if (found)
        assert_int_equal(cascade_record_decode(cascade_v1_NeighbourList_fields, out,
                                               (const uint8_t *)rep->str, rep->len),
                         0);
    freeReplyObject(rep);
    return found;
}

static void test_publish_in_redis(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv), 0);
    struct cascade_redis_opts ro = {.host = "127.0.0.1", .port = srv.port};
    cascade_redis *r = cascade_redis_create(&ro);
    cascade_dataset *ds = hand_world();
    struct cascade_itemcf_opts o;
    struct cascade_cf_lists res;
    struct cascade_cf_publish_opts po = {
        .ns = "t", .family = "itemcf", .pipeline = 2, .quiet = true};
    struct cascade_cf_publish_summary sum;
    static cascade_v1_NeighbourList list;
    char err[512];
    int64_t gen = 0;
    cascade_itemcf_defaults(&o);
    o.quiet = true;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &res, err, sizeof(err)), 0);
    assert_int_equal(cascade_cf_publish_items(ds, &res, r, &po, &sum, err, sizeof(err)), 0);
    assert_int_equal(sum.gen, 1);
    assert_int_equal(sum.written, 4);
    assert_int_equal(cascade_store_get_generation(r, "t", "itemcf", &gen), 0);
    assert_int_equal(gen, 1);
    assert_true(get_list(r, 1, C, &list));
    assert_int_equal(list.neighbours_count, 3);
    assert_int_equal(list.neighbours[0].item_id, D);
    NEAR(list.neighbours[0].score, 4 / sqrt(17.0));
    assert_int_equal(list.neighbours[2].item_id, A);
    assert_true(get_list(r, 1, A, &list));
    assert_int_equal(list.neighbours[0].item_id, B);
    cascade_cf_lists_free(&res);

    /* Rebuilt with a cap that empties every list: generation 2 has no lists
     * and is current, generation 1 stays readable until generation 3. */
    o.max_items_per_user = 1;
    assert_int_equal(cascade_itemcf_compute(ds, &o, &res, err, sizeof(err)), 0);
    assert_int_equal(cascade_cf_publish_items(ds, &res, r, &po, &sum, err, sizeof(err)), 0);
    assert_int_equal(sum.gen, 2);
    assert_int_equal(sum.written, 0);
    assert_int_equal(sum.empty, 4);
    assert_int_equal(cascade_store_get_generation(r, "t", "itemcf", &gen), 0);
    assert_int_equal(gen, 2);
    assert_false(get_list(r, 2, C, &list));
    assert_true(get_list(r, 1, C, &list));
    cascade_cf_lists_free(&res);

    /* Redis gone: a failure with the server's address in the message. */
    test_redis_stop(&srv);
    assert_int_equal(cascade_itemcf_compute(ds, &o, &res, err, sizeof(err)), 0);
    assert_true(cascade_cf_publish_items(ds, &res, r, &po, &sum, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "redis 127.0.0.1:"));
    cascade_cf_lists_free(&res);
    cascade_dataset_destroy(ds);
    cascade_redis_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed_cosine),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_publish_in_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
