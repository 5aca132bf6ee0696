/* Unit tests of the Recall "two_tower" channel: a small model, its id maps
 * and item index published the way cascade-build train-two-tower does; the
 * channel's candidates must be exactly the top cosines of the user vector
 * (profile + last-n from a seeded Redis) with the last-n excluded, through
 * an exact and an IVF index, and a new version is served once latest names it.
 * Items added online ({ns}:items:online, PutItems) are scored beside the index
 * with vectors from the item tower: a new item through the unknown id row (the
 * cold-start path), a changed item with its own row and new features replacing
 * its index copy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recall_seed.h"
#include "twotower.h"
#include "vindex.h"

#define N_ITEMS 60
#define DIM 8

struct fixture {
    struct test_redis_fixture redis;
    cascade_arena *arena;
    char dir[256];
};

static void model_config(struct cascade_twotower_config *c, uint64_t seed)
{
    cascade_twotower_config_default(c);
    c->n_users = 4; /* 0 unknown, alice, bob, carol */
    c->n_items = N_ITEMS + 1;
    c->n_authors = 6;
    c->n_categories = 4;
    c->n_user_age_buckets = 7;
    c->n_genders = 4;
    c->n_cities = 3; /* 0 unknown, city 7, city 9 */
    c->n_item_age_buckets = 6;
    c->emb_dim = 8;
    c->hidden = 16;
    c->out_dim = DIM;
    c->init_std = 0.5f;
    c->seed = seed;
}

static struct cascade_twotower_item item_of(size_t i)
{
    return (struct cascade_twotower_item){(uint32_t)i + 1, 1 + (uint32_t)i % 5, 1 + (uint32_t)i % 3,
                                          1 + (uint32_t)i % 5};
}

static uint64_t item_id(size_t i)
{
    return 1000 + i;
}

/* Write version `version` (model seeded `seed`, index with nlist lists) into
 * dir and point two-tower.latest at it. */
static void publish(const char *dir, const char *version, uint64_t seed, size_t nlist)
{
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    char err[512], path[600];
    model_config(&c, seed);
    assert_int_equal(cascade_twotower_create(&c, &m, err, sizeof err), 0);
    struct cascade_twotower_item its[N_ITEMS];
    uint64_t ids[N_ITEMS];
    float vec[N_ITEMS * DIM];
    for (size_t i = 0; i < N_ITEMS; i++) {
        its[i] = item_of(i);
        ids[i] = item_id(i);
    }
    assert_int_equal(cascade_twotower_item_vectors(m, its, N_ITEMS, vec, err, sizeof err), 0);
    struct cascade_vindex_opts vo = {.metric = CASCADE_VINDEX_COSINE, .nlist = nlist, .seed = 1};
    cascade_vindex *ix = cascade_vindex_build(vec, ids, N_ITEMS, DIM, &vo, err, sizeof err);
    if (!ix)
        fail_msg("vindex: %s", err);
    snprintf(path, sizeof path, "%s/%s.items.safetensors", dir, version);
    assert_int_equal(cascade_vindex_save(ix, path, version, err, sizeof err), 0);
    cascade_vindex_destroy(ix);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, version);
    assert_int_equal(cascade_twotower_save(m, path, err, sizeof err), 0);
    cascade_twotower_destroy(m);

    snprintf(path, sizeof path, "%s/%s.maps.tsv", dir, version);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "cascade-two-tower-maps\t1\nref_ts\t1700000000\n");
    fprintf(f, "user\talice\t1\nuser\tbob\t2\nuser\tcarol\t3\n");
    for (size_t i = 0; i < N_ITEMS; i++)
        fprintf(f, "item\t%" PRIu64 "\t%zu\n", item_id(i), i + 1);
    fprintf(f, "city\t7\t1\ncity\t9\t2\n");
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof path, "%s/two-tower.latest", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", version);
    assert_int_equal(fclose(f), 0);
}

/* The expected candidates: the top quota cosines of the user's vector under
 * the model seeded `seed`, items in `exclude` left out. */
static size_t expected(uint64_t seed, const struct cascade_twotower_user *u,
                       const uint64_t *exclude, size_t n_exclude, size_t quota, uint64_t *ids,
                       float *scores)
{
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    char err[256];
    model_config(&c, seed);
    assert_int_equal(cascade_twotower_create(&c, &m, err, sizeof err), 0);
    float uv[DIM], iv[DIM], s[N_ITEMS];
    bool used[N_ITEMS] = {false};
    assert_int_equal(cascade_twotower_user_vectors(m, u, 1, uv, err, sizeof err), 0);
    for (size_t i = 0; i < N_ITEMS; i++) {
        struct cascade_twotower_item it = item_of(i);
        assert_int_equal(cascade_twotower_item_vectors(m, &it, 1, iv, err, sizeof err), 0);
        s[i] = 0;
        for (size_t d = 0; d < DIM; d++)
            s[i] += uv[d] * iv[d];
        for (size_t e = 0; e < n_exclude; e++)
            used[i] |= exclude[e] == item_id(i);
    }
    cascade_twotower_destroy(m);
    size_t n = 0;
    for (; n < quota; n++) { /* selection: best unused, ties by smaller id */
        size_t best = N_ITEMS;
        for (size_t i = 0; i < N_ITEMS; i++)
            if (!used[i] && (best == N_ITEMS || s[i] > s[best]))
                best = i;
        if (best == N_ITEMS)
            break;
        used[best] = true;
        ids[n] = item_id(best);
        scores[n] = s[best];
    }
    return n;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    if (test_redis_fixture_start(&f.redis) != 0)
        return -1;
    if (!test_tempdir(f.dir, sizeof f.dir))
        return -1;
    /* alice: 30 years, female, city 7, last-n 1003 then 1010 (newest). */
    seed_profile(f.redis.conn, "alice", 30, 1, 7, NULL, NULL, 0);
    seed_push(f.redis.conn, "alice", 1003, 1);
    seed_push(f.redis.conn, "alice", 1010, 2);
    seed_push(f.redis.conn, "alice", 99999, 1); /* unknown to the model: ignored */
    f.arena = cascade_arena_create(0);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cascade_arena_destroy(f->arena);
    test_redis_fixture_stop(&f->redis);
    test_rmdir(f->dir);
    return 0;
}

static cascade_recall *stage(struct fixture *f, const char *extra)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"recall\": {\"channels\": {\"two_tower\": {\"model_dir\": \"%s\", "
             "\"reload_ms\": 0%s}}}}",
             f->dir, extra);
    return seed_recall(f->redis.pool, NS, NULL, json);
}

static Cascade__V1__RecallResponse *run(struct fixture *f, cascade_recall *r, const char *uid,
                                        uint32_t quota)
{
    return seed_run1(r, f->arena,
                     seed_request(f->arena, uid, quota, 1, (const char *[]){"two_tower"}));
}

static const uint32_t alice_hist[] = {4, 11}; /* rows of 1003 and 1010 */
static const uint64_t alice_lastn[] = {1003, 1010};

static struct cascade_twotower_user alice(void)
{
    return (struct cascade_twotower_user){.user_id = 1,
                                          .age_bucket = 3,
                                          .gender = 1,
                                          .city = 1,
                                          .history = alice_hist,
                                          .n_history = 2};
}

static void test_not_configured(void **state)
{
    struct fixture *f = *state;
    cascade_recall *r = seed_recall(f->redis.pool, NS, NULL, "{}");
    seed_expect(run(f, r, "alice", 5), "two_tower", NULL, NULL, 0);
    cascade_recall_destroy(r);
    /* A model directory with nothing published yet: no candidates, no error. */
    r = stage(f, "");
    seed_expect(run(f, r, "alice", 5), "two_tower", NULL, NULL, 0);
    cascade_recall_destroy(r);
}

/* Exact index: the top cosines of alice's vector, her last-n excluded. */
static void test_exact(void **state)
{
    struct fixture *f = *state;
    publish(f->dir, "two-tower-v1", 11, 1);
    cascade_recall *r = stage(f, "");
    uint64_t ids[N_ITEMS];
    float scores[N_ITEMS];
    struct cascade_twotower_user u = alice();
    size_t n = expected(11, &u, alice_lastn, 2, 12, ids, scores);
    assert_int_equal(n, 12);
    seed_expect(run(f, r, "alice", 12), "two_tower", ids, scores, n);
    /* A user the model never saw, without profile or history: row 0 features. */
    struct cascade_twotower_user nobody = {0};
    n = expected(11, &nobody, NULL, 0, 5, ids, scores);
    seed_expect(run(f, r, "zed", 5), "two_tower", ids, scores, n);
    /* A quota above the catalogue: every item but the last-n. */
    n = expected(11, &u, alice_lastn, 2, 100, ids, scores);
    assert_int_equal(n, N_ITEMS - 2);
    seed_expect(run(f, r, "alice", 100), "two_tower", ids, scores, n);
    cascade_recall_destroy(r);
}

/* IVF index: probing every list gives the exact answer; probing one list
 * falls back to the exact scan when the list is shorter than needed. */
static void test_ivf_and_reload(void **state)
{
    struct fixture *f = *state;
    publish(f->dir, "two-tower-v1", 11, 1);
    cascade_recall *all = stage(f, ", \"nprobe\": 6");
    cascade_recall *one = stage(f, ", \"nprobe\": 1");
    uint64_t ids[N_ITEMS];
    float scores[N_ITEMS];
    struct cascade_twotower_user u = alice();
    size_t n = expected(11, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run(f, all, "alice", 10), "two_tower", ids, scores, n);

    /* A new version: served by the running stages once latest names it. */
    publish(f->dir, "two-tower-v2", 22, 6);
    n = expected(22, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run(f, all, "alice", 10), "two_tower", ids, scores, n);
    n = expected(22, &u, alice_lastn, 2, 40, ids, scores);
    Cascade__V1__RecallResponse *resp = run(f, one, "alice", 40);
    /* One list holds ~10 items: the exact fallback still fills the quota. */
    assert_int_equal(resp->n_candidates, 40);
    size_t agree = 0;
    for (size_t i = 0; i < resp->n_candidates; i++) {
        uint64_t id = resp->candidates[i]->item_id;
        assert_true(id != 1003 && id != 1010);
        for (size_t j = 0; j < n; j++)
            agree += ids[j] == id;
    }
    print_message("nprobe 1 of 6: %zu of the exact top 40 returned\n", agree);
    assert_true(agree >= 20);

    /* A broken version named by latest: the running stage keeps serving v2. */
    FILE *lf = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/two-tower.latest", f->dir);
    assert_non_null(lf = fopen(path, "w"));
    fprintf(lf, "two-tower-missing\n");
    fclose(lf);
    n = expected(22, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run(f, all, "alice", 10), "two_tower", ids, scores, n);
    cascade_recall_destroy(all);
    cascade_recall_destroy(one);
}

/* One online item as the channel must see it: id and item-tower features. */
struct online_item {
    uint64_t id;
    struct cascade_twotower_item feat;
};

/* The expected candidates with online items: the index items (those also
 * online take their online features) and the new online items, by cosine. */
static size_t expected_online(uint64_t seed, const struct cascade_twotower_user *u,
                              const struct online_item *on, size_t n_on, size_t quota,
                              uint64_t *ids, float *scores)
{
    struct cascade_twotower_config c;
    cascade_twotower *m = NULL;
    char err[256];
    model_config(&c, seed);
    assert_int_equal(cascade_twotower_create(&c, &m, err, sizeof err), 0);
    size_t total = N_ITEMS + n_on, k = 0;
    uint64_t all_ids[N_ITEMS + 8];
    float s[N_ITEMS + 8], uv[DIM], iv[DIM];
    bool used[N_ITEMS + 8] = {false};
    assert_true(n_on <= 8);
    assert_int_equal(cascade_twotower_user_vectors(m, u, 1, uv, err, sizeof err), 0);
    for (size_t i = 0; i < total; i++) {
        struct cascade_twotower_item it;
        all_ids[i] = i < N_ITEMS ? item_id(i) : on[i - N_ITEMS].id;
        it = i < N_ITEMS ? item_of(i) : on[i - N_ITEMS].feat;
        for (size_t j = 0; j < n_on && i < N_ITEMS; j++)
            if (on[j].id == all_ids[i])
                used[i] = true; /* its online copy counts instead */
        assert_int_equal(cascade_twotower_item_vectors(m, &it, 1, iv, err, sizeof err), 0);
        s[i] = 0;
        for (size_t d = 0; d < DIM; d++)
            s[i] += uv[d] * iv[d];
        for (size_t e = 0; e < 2; e++)
            used[i] |= all_ids[i] == alice_lastn[e];
    }
    cascade_twotower_destroy(m);
    for (; k < quota; k++) {
        size_t best = total;
        for (size_t i = 0; i < total; i++)
            if (!used[i] && (best == total || s[i] > s[best] ||
                             (s[i] == s[best] && all_ids[i] < all_ids[best])))
                best = i;
        if (best == total)
            break;
        used[best] = true;
        ids[k] = all_ids[best];
        scores[k] = s[best];
    }
    return k;
}

static void put_online(struct fixture *f, uint64_t id, uint64_t author, uint32_t category,
                       int64_t created, double rev)
{
    cascade_v1_ItemRecord rec = cascade_v1_ItemRecord_init_zero;
    rec.item_id = id;
    rec.author_id = author;
    rec.category = category;
    rec.created_at_s = created;
    seed_ok(cascade_store_put_item(f->redis.conn, NS, &rec), f->redis.conn, "item record");
    seed_zadd(f->redis.conn, NS ":items:online", rev, id);
}

static void test_online_items(void **state)
{
    struct fixture *f = *state;
    publish(f->dir, "two-tower-v1", 11, 1);
    cascade_recall *r = stage(f, "");
    uint64_t ids[N_ITEMS + 8];
    float scores[N_ITEMS + 8];
    struct cascade_twotower_user u = alice();
    /* The maps (ref_ts 1700000000) know no author or category: row 0. A new
     * item 5000 an hour old (age bucket 1) goes through item row 0; 1005
     * (row 6), changed, ten days old (bucket 3), replaces its index copy. */
    put_online(f, 5000, 3, 2, 1700000000 - 3600, 1);
    put_online(f, 1005, 4, 1, 1700000000 - 10 * 86400, 2);
    const struct online_item on[2] = {{5000, {0, 0, 0, 1}}, {1005, {6, 0, 0, 3}}};
    size_t n = expected_online(11, &u, on, 2, N_ITEMS + 8, ids, scores);
    assert_int_equal(n, N_ITEMS - 2 + 1);
    seed_expect(run(f, r, "alice", N_ITEMS + 8), "two_tower", ids, scores, n);
    /* A smaller quota is the best prefix of the same merge. */
    n = expected_online(11, &u, on, 2, 7, ids, scores);
    seed_expect(run(f, r, "alice", 7), "two_tower", ids, scores, n);

    /* A new version recomputes the online vectors with its own model. */
    publish(f->dir, "two-tower-v2", 22, 1);
    n = expected_online(22, &u, on, 2, N_ITEMS + 8, ids, scores);
    seed_expect(run(f, r, "alice", N_ITEMS + 8), "two_tower", ids, scores, n);
    cascade_recall_destroy(r);
    redisReply *rep = NULL;
    seed_ok(cascade_redis_command(f->redis.conn, &rep, "DEL " NS ":items:online"), f->redis.conn,
            "cleanup");
    freeReplyObject(rep);
}

/* Run the channel for alice as a member of an arm whose
 * recall.two_tower.model_version is `version` (NULL: no experiment). */
static Cascade__V1__RecallResponse *run_arm(struct fixture *f, cascade_recall *r, uint32_t quota,
                                            const char *version)
{
    Cascade__V1__RecallRequest *req =
        seed_request(f->arena, "alice", quota, 1, (const char *[]){"two_tower"});
    if (version)
        req->experiments =
            test_experiment(f->arena, "recall", "arm", "recall.two_tower.model_version", version);
    return seed_run1(r, f->arena, req);
}

static cascade_config *version_config(const struct fixture *f, const char *experiment,
                                      const char *version)
{
    char json[1024], err[256] = "";
    snprintf(json, sizeof json,
             "{\"recall\": {\"channels\": {\"two_tower\": {\"model_dir\": \"%s\", "
             "\"reload_ms\": 0}}}, \"experiments\": {\"layers\": [{\"name\": \"recall\", "
             "\"experiments\": [{\"name\": \"%s\", \"ranges\": [[0, 9]], \"params\": "
             "{\"recall.two_tower.model_version\": \"%s\"}}]}]}}",
             f->dir, experiment, version);
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    return cfg;
}

/* A model version per experiment arm: the versions experiments name in
 * recall.two_tower.model_version stay loaded beside two-tower.latest; a
 * request of that arm searches with its version (the top cosines of that
 * model), any other with the latest; a reload changes the set; a version
 * that does not load is a config error and changes nothing. */
static void test_model_version_per_arm(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    publish(f->dir, "two-tower-v3", 33, 1);
    publish(f->dir, "two-tower-v1", 11, 1);
    publish(f->dir, "two-tower-v2", 22, 1); /* latest */
    cascade_config *cfg = version_config(f, "old", "two-tower-v1");
    cascade_recall *r = cascade_recall_create(cfg, f->redis.pool, NS, NULL, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!r)
        fail_msg("create: %s", err);
    uint64_t ids[N_ITEMS];
    float scores[N_ITEMS];
    struct cascade_twotower_user u = alice();
    size_t n = expected(11, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run_arm(f, r, 10, "two-tower-v1"), "two_tower", ids, scores, n);
    n = expected(22, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run_arm(f, r, 10, NULL), "two_tower", ids, scores, n);
    /* A version no experiment names is not loaded on demand: the latest. */
    seed_expect(run_arm(f, r, 10, "two-tower-v3"), "two_tower", ids, scores, n);

    /* Reload: version 3 joins, version 1 leaves (its arm gets the latest). */
    cfg = version_config(f, "new", "two-tower-v3");
    assert_int_equal(cascade_recall_pin_versions(r, cfg, err, sizeof err), 0);
    cascade_config_destroy(cfg);
    seed_expect(run_arm(f, r, 10, "two-tower-v1"), "two_tower", ids, scores, n);
    n = expected(33, &u, alice_lastn, 2, 10, ids, scores);
    seed_expect(run_arm(f, r, 10, "two-tower-v3"), "two_tower", ids, scores, n);

    /* A missing version or a path: refused, the set unchanged. */
    cfg = version_config(f, "gone", "two-tower-404");
    assert_int_equal(cascade_recall_pin_versions(r, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "layer \"recall\" experiment \"gone\": "
                                "recall.two_tower.model_version \"two-tower-404\""));
    cascade_config_destroy(cfg);
    cfg = version_config(f, "odd", "../two-tower-v1");
    assert_int_equal(cascade_recall_pin_versions(r, cfg, err, sizeof err), CASCADE_EINVAL);
    assert_non_null(strstr(err, "must be a version name"));
    cascade_config_destroy(cfg);
    seed_expect(run_arm(f, r, 10, "two-tower-v3"), "two_tower", ids, scores, n);
    cascade_recall_destroy(r);
    /* At create, a version that does not load refuses the config. */
    cfg = version_config(f, "gone", "two-tower-404");
    assert_null(cascade_recall_create(cfg, f->redis.pool, NS, NULL, err, sizeof err));
    assert_non_null(strstr(err, "two-tower-404"));
    cascade_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_configured),        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_ivf_and_reload),        cmocka_unit_test(test_online_items),
        cmocka_unit_test(test_model_version_per_arm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
