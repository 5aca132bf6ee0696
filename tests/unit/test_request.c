/* Unit tests for common/request.c: the user-context and candidate-list checks
 * (codes and the exact messages the stages answer with) and the candidate
 * sort (score desc, id asc, input position; every score kind; NaN last). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "error.h"
#include "request.h"

static void test_check_user(void **state)
{
    (void)state;
    char err[128] = "";
    char id[CASCADE_USER_ID_MAX + 2];
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;

    assert_int_equal(cascade_request_check_user(NULL, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    u.user_id = NULL;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");
    u.user_id = "";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is empty");

    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0'; /* 65 bytes */
    u.user_id = id;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is longer than 64 bytes");
    id[CASCADE_USER_ID_MAX] = '\0'; /* exactly 64 bytes is fine */
    err[0] = '\0';
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    assert_string_equal(err, "");

    u.request_time_s = -5;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.request_time_s -5 is negative");
    u.request_time_s = 0; /* 0 = server clock */
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    u.request_time_s = 1750000000;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
}

static void test_check_user_id_names_the_field(void **state)
{
    (void)state;
    char err[128] = "";
    assert_int_equal(cascade_request_check_user_id("events[3].user_id", "", err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "events[3].user_id is empty");
    char id[100];
    memset(id, 'y', 99);
    id[99] = '\0';
    assert_int_equal(cascade_request_check_user_id("user_id", id, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user_id is longer than 64 bytes");
    assert_int_equal(cascade_request_check_user_id("user_id", "u1", err, sizeof err), 0);
}

static void test_check_candidates(void **state)
{
    (void)state;
    char err[128] = "";
    Cascade__V1__Candidate a = CASCADE__V1__CANDIDATE__INIT, b = CASCADE__V1__CANDIDATE__INIT;
    Cascade__V1__Candidate *c[4] = {&a, &b, NULL, &a};

    assert_int_equal(cascade_request_check_candidates(c, 4, 3, err, sizeof err), CASCADE_ETOOBIG);
    assert_string_equal(err, "4 candidates exceed the limit of 3");
    assert_int_equal(cascade_request_check_candidates(c, 4, 4, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[2] is missing");
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), 0);
    assert_int_equal(cascade_request_check_candidates(NULL, 0, 0, err, sizeof err), 0);
}

static void test_utf8(void **state)
{
    (void)state;
    struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"caf\xc3\xa9", true},              /* U+00E9 */
        {"\xe4\xb8\xad\xe6\x96\x87", true}, /* two CJK characters */
        {"\xf0\x9f\x98\x80", true},         /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},         /* U+10FFFF, the last code point */
        {"\xff", false},                    /* never in UTF-8 */
        {"a\x80", false},                   /* lone continuation byte */
        {"\xc3", false},                    /* truncated sequence */
        {"\xe4\xb8", false},                /* truncated sequence */
        {"\xc3\x28", false},                /* bad continuation */
        {"\xc0\xaf", false},                /* overlong '/' */
        {"\xe0\x80\xaf", false},            /* overlong '/' */
        {"\xf0\x80\x80\xaf", false},        /* overlong '/' */
        {"\xed\xa0\x80", false},            /* U+D800, a surrogate */
        {"\xf4\x90\x80\x80", false},        /* U+110000, above the last */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cascade_request_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("case %zu: expected %s", i, cases[i].ok ? "valid" : "invalid");
    }
}

static void test_request_id_valid(void **state)
{
    (void)state;
    char id[CASCADE_REQUEST_ID_MAX + 2];
    assert_true(cascade_request_id_valid("a"));
    assert_true(cascade_request_id_valid("AZaz09._:-"));
    assert_true(cascade_request_id_valid("0123456789abcdef"));
    assert_false(cascade_request_id_valid(NULL));
    assert_false(cascade_request_id_valid(""));
    assert_false(cascade_request_id_valid("has space"));
    assert_false(cascade_request_id_valid("tab\there"));
    assert_false(cascade_request_id_valid("nl\nERROR forged"));
    assert_false(cascade_request_id_valid("slash/no"));
    assert_false(cascade_request_id_valid("caf\xc3\xa9"));
    memset(id, 'r', sizeof id - 1);
    id[sizeof id - 1] = '\0'; /* 65 bytes */
    assert_false(cascade_request_id_valid(id));
    id[CASCADE_REQUEST_ID_MAX] = '\0'; /* exactly 64 */
    assert_true(cascade_request_id_valid(id));
}

static void test_check_user_fields(void **state)
{
    (void)state;
    char err[160] = "";
    char device[300 + 1];
    Cascade__V1__UserContext u = CASCADE__V1__USER_CONTEXT__INIT;
    u.user_id = "caf\xc3\xa9-user";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);

    u.user_id = "bad\xff";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.user_id is not valid UTF-8");
    assert_int_equal(
        cascade_request_check_user_id("events[2].user_id", "\xc0\xaf", err, sizeof err),
        CASCADE_EINVAL);
    assert_string_equal(err, "events[2].user_id is not valid UTF-8");
    u.user_id = "u1";

    memset(device, 'd', 300);
    device[300] = '\0';
    u.device = device;
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.device: 300 bytes, at most 64");
    device[CASCADE_REQUEST_DEVICE_MAX] = '\0';
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    u.device = "\xe4\xb8";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.device is not valid UTF-8");
    u.device = "ios";

    u.geohash = "wx4g0ec1wx4g0";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.geohash: 13 bytes, at most 12");
    u.geohash = "wx4g0ec1wx4g";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);

    u.request_id = "req\x01";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "user.request_id is not 1..64 characters of [A-Za-z0-9._:-]");
    u.request_id = "req-1.a:b_c";
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
    u.request_id = ""; /* none */
    assert_int_equal(cascade_request_check_user(&u, err, sizeof err), 0);
}

static void test_check_candidate_fields(void **state)
{
    (void)state;
    char err[160] = "";
    Cascade__V1__Candidate a = CASCADE__V1__CANDIDATE__INIT, b = CASCADE__V1__CANDIDATE__INIT;
    Cascade__V1__Candidate *c[2] = {&a, &b};
    Cascade__V1__ChannelHit h = CASCADE__V1__CHANNEL_HIT__INIT;
    Cascade__V1__ChannelHit *hits[CASCADE_REQUEST_CHANNEL_HITS_MAX + 1];
    Cascade__V1__ItemAttributes attrs = CASCADE__V1__ITEM_ATTRIBUTES__INIT;
    static float emb[CASCADE_REQUEST_EMBEDDING_MAX + 1];
    char name[CASCADE_REQUEST_CHANNEL_NAME_MAX + 2];

    for (size_t i = 0; i <= CASCADE_REQUEST_CHANNEL_HITS_MAX; i++)
        hits[i] = &h;
    h.channel = "itemcf";
    b.channels = hits;
    b.n_channels = CASCADE_REQUEST_CHANNEL_HITS_MAX + 1;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[1].channels: 65 entries, at most 64");
    b.n_channels = CASCADE_REQUEST_CHANNEL_HITS_MAX;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), 0);

    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    h.channel = name;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[1].channels[0].channel: 65 bytes, at most 64");
    h.channel = "hot\xff";
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[1].channels[0].channel is not valid UTF-8");
    h.channel = "hot";
    hits[3] = NULL;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[1].channels[3] is missing");
    hits[3] = &h;

    a.attrs = &attrs;
    attrs.embedding = emb;
    attrs.n_embedding = CASCADE_REQUEST_EMBEDDING_MAX + 1;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[0].attrs.embedding: 1025 floats, at most 1024");
    attrs.n_embedding = CASCADE_REQUEST_EMBEDDING_MAX;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), 0);
    emb[7] = NAN;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[0].attrs.embedding[7] is not a finite number");
    emb[7] = 0;
    attrs.duration_s = -1;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "candidates[0].attrs.duration_s -1 is not a finite number >= 0");
    attrs.duration_s = INFINITY;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), CASCADE_EINVAL);
    attrs.duration_s = 30;
    assert_int_equal(cascade_request_check_candidates(c, 2, 2, err, sizeof err), 0);
}

static void test_check_experiments(void **state)
{
    (void)state;
    char err[160] = "";
    char value[300 + 1];
    Cascade__V1__ExperimentContext e = CASCADE__V1__EXPERIMENT_CONTEXT__INIT;
    Cascade__V1__LayerAssignment l0 = CASCADE__V1__LAYER_ASSIGNMENT__INIT,
                                 l1 = CASCADE__V1__LAYER_ASSIGNMENT__INIT;
    Cascade__V1__LayerAssignment *layers[CASCADE_REQUEST_EXP_LAYERS_MAX + 1];
    Cascade__V1__LayerAssignment__ParamsEntry p = CASCADE__V1__LAYER_ASSIGNMENT__PARAMS_ENTRY__INIT;
    Cascade__V1__LayerAssignment__ParamsEntry *params[CASCADE_REQUEST_EXP_PARAMS_MAX + 1];

    assert_int_equal(cascade_request_check_experiments(NULL, err, sizeof err), 0);
    for (size_t i = 0; i <= CASCADE_REQUEST_EXP_LAYERS_MAX; i++)
        layers[i] = &l0;
    for (size_t i = 0; i <= CASCADE_REQUEST_EXP_PARAMS_MAX; i++)
        params[i] = &p;
    l0.layer = "rerank";
    l0.experiment = "mmr_07:reverse";
    l0.bucket = 999;
    l1.layer = "rank";
    l1.experiment = "baseline";
    p.key = "rerank.lambda";
    p.value = "0.7";
    l1.params = params;
    l1.n_params = 2;
    layers[1] = &l1;
    e.bucket_count = 1000;
    e.layers = layers;
    e.n_layers = 2;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), 0);

    e.n_layers = CASCADE_REQUEST_EXP_LAYERS_MAX + 1;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers: 33 entries, at most 32");
    e.n_layers = 2;
    e.bucket_count = 500;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[0].bucket 999 out of range 0..499");
    e.bucket_count = CASCADE_REQUEST_EXP_BUCKETS_MAX + 1;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.bucket_count 1000001 out of range 0..1000000");
    e.bucket_count = 1000;

    l1.n_params = CASCADE_REQUEST_EXP_PARAMS_MAX + 1;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1].params: 65 entries, at most 64");
    l1.n_params = 2;
    memset(value, 'v', 300);
    value[300] = '\0';
    p.value = value;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1].params[0].value: 300 bytes, at most 256");
    p.value = "0.7";
    p.key = "k\xff";
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1].params[0].key is not valid UTF-8");
    p.key = "rerank.lambda";
    params[1] = NULL;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1].params[1] is missing");
    params[1] = &p;
    l1.experiment = value;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1].experiment: 300 bytes, at most 128");
    l1.experiment = "baseline";
    layers[1] = NULL;
    assert_int_equal(cascade_request_check_experiments(&e, err, sizeof err), CASCADE_EINVAL);
    assert_string_equal(err, "experiments.layers[1] is missing");
}

/* Candidates i = 0..n-1 with item ids ids[i] and every score kind set to s[i]
 * times a per-kind factor, so each kind sorts the same way. */
static void make(Cascade__V1__Candidate *store, Cascade__V1__Candidate **c, const uint64_t *ids,
                 const float *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cascade__v1__candidate__init(&store[i]);
        store[i].item_id = ids[i];
        store[i].recall_score = s[i];
        store[i].prerank_score = 2 * s[i];
        store[i].rank_score = 3 * s[i];
        store[i].rerank_score = 4 * s[i];
        c[i] = &store[i];
    }
}

/* RecallSignals columns become each candidate's hits, in order, with the
 * channel names of the table; malformed columns are refused naming the
 * field, and a candidate cannot carry both forms. */
static void test_expand_signals(void **state)
{
    (void)state;
    cascade_arena *a = cascade_arena_create(0);
    Cascade__V1__Candidate c[3], *cands[3] = {&c[0], &c[1], &c[2]};
    Cascade__V1__RecallSignals sig = CASCADE__V1__RECALL_SIGNALS__INIT;
    char *names[] = {"hot", "itemcf"};
    uint32_t count[] = {2, 0, 1}, channel[] = {1, 0, 1}, rank[] = {7, 0, 3};
    float norm[] = {0.5f, 1.0f, 0.25f};
    char err[256] = "";
    for (int i = 0; i < 3; i++)
        cascade__v1__candidate__init(&c[i]);
    sig.channels = names;
    sig.n_channels = 2;
    sig.hit_count = count;
    sig.n_hit_count = 3;
    sig.hit_channel = channel;
    sig.n_hit_channel = 3;
    sig.hit_norm_score = norm;
    sig.n_hit_norm_score = 3;
    sig.hit_rank = rank;
    sig.n_hit_rank = 3;
    assert_int_equal(cascade_request_expand_signals(NULL, cands, 3, a, err, sizeof err), 0);
    assert_int_equal(c[0].n_channels, 0);
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err), 0);
    assert_int_equal(c[0].n_channels, 2);
    assert_string_equal(c[0].channels[0]->channel, "itemcf");
    assert_float_equal(c[0].channels[0]->norm_score, 0.5f, 0);
    assert_int_equal(c[0].channels[0]->rank, 7);
    assert_string_equal(c[0].channels[1]->channel, "hot");
    assert_int_equal(c[0].channels[1]->rank, 0);
    assert_int_equal(c[1].n_channels, 0);
    assert_int_equal(c[2].n_channels, 1);
    assert_string_equal(c[2].channels[0]->channel, "itemcf");
    assert_float_equal(c[2].channels[0]->norm_score, 0.25f, 0);
    assert_int_equal(c[2].channels[0]->rank, 3);
    /* Now they carry channels: sending the columns as well is refused. */
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "candidates[0] carries channels and recall_signals as well; send one");
    for (int i = 0; i < 3; i++)
        cascade__v1__candidate__init(&c[i]);
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 2, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "recall_signals.hit_count: 3 entries for 2 candidates");
    sig.n_hit_rank = 2;
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_non_null(
        strstr(err, "must each have 3 entries (the sum of hit_count), have 3, 3 and 2"));
    sig.n_hit_rank = 3;
    channel[2] = 2;
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "recall_signals.hit_channel[2] 2 out of range 0..2");
    channel[2] = 1;
    count[1] = 1000;
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "recall_signals.hit_count[1]: 1000 hits, at most 64");
    count[1] = 0;
    names[0] = "\xff";
    assert_int_equal(cascade_request_expand_signals(&sig, cands, 3, a, err, sizeof err),
                     CASCADE_EINVAL);
    assert_string_equal(err, "recall_signals.channels[0] is not valid UTF-8");
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].n_channels, 0); /* nothing given on a refusal */
    cascade_arena_destroy(a);
}

static void test_sort_order(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    assert_non_null(arena);
    /* Two equal scores with different ids (id decides) and an exact repeat of
     * (score, id) at positions 1 and 4 (input position decides). */
    const uint64_t ids[] = {9, 5, 7, 3, 5, 1};
    const float s[] = {0.5f, 0.8f, 0.8f, 0.1f, 0.8f, 0.9f};
    const size_t want[] = {5, 1, 4, 2, 0, 3}; /* input positions in sorted order */
    const enum cascade_score_kind kinds[] = {CASCADE_SCORE_RECALL, CASCADE_SCORE_PRERANK,
                                             CASCADE_SCORE_RANK, CASCADE_SCORE_RERANK};
    for (size_t k = 0; k < 4; k++) {
        Cascade__V1__Candidate store[6], *c[6];
        make(store, c, ids, s, 6);
        assert_int_equal(cascade_request_sort_candidates(c, 6, kinds[k], arena), 0);
        for (size_t i = 0; i < 6; i++)
            assert_ptr_equal(c[i], &store[want[i]]);
        assert_true(cascade_request_candidate_score(c[0], kinds[k]) == (float)(k + 1) * 0.9f);
    }
    assert_int_equal(cascade_request_sort_candidates(NULL, 0, CASCADE_SCORE_RANK, arena), 0);
    cascade_arena_destroy(arena);
}

static void test_sort_nan_last(void **state)
{
    (void)state;
    cascade_arena *arena = cascade_arena_create(0);
    const uint64_t ids[] = {1, 2, 3, 4};
    const float s[] = {NAN, -1.0f, NAN, 2.0f};
    Cascade__V1__Candidate store[4], *c[4];
    make(store, c, ids, s, 4);
    assert_int_equal(cascade_request_sort_candidates(c, 4, CASCADE_SCORE_RANK, arena), 0);
    assert_int_equal(c[0]->item_id, 4);
    assert_int_equal(c[1]->item_id, 2);
    assert_int_equal(c[2]->item_id, 1); /* NaNs last, by id */
    assert_int_equal(c[3]->item_id, 3);
    cascade_arena_destroy(arena);
}

/* The documented order, written out for the reference sort below: score
 * descending with NaN after every number (ranked as -inf: tied with it), then
 * id, then input position (the candidates live in one array, so their
 * addresses are the positions). */
static int reference_cmp(const void *pa, const void *pb)
{
    const Cascade__V1__Candidate *a = *(Cascade__V1__Candidate *const *)pa;
    const Cascade__V1__Candidate *b = *(Cascade__V1__Candidate *const *)pb;
    float x = isnan(a->recall_score) ? -INFINITY : a->recall_score;
    float y = isnan(b->recall_score) ? -INFINITY : b->recall_score;
    if (x != y)
        return x > y ? -1 : 1;
    if (a->item_id != b->item_id)
        return a->item_id < b->item_id ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* The sort gives the reference order on random lists of every length up to
 * past a few merge passes (runs of 16, then widths 32 ... 2048), with many
 * ties in score and id, NaNs and -inf, already sorted and reversed input. */
static void test_sort_matches_reference(void **state)
{
    (void)state;
    enum { MAX = 3000 };
    static const float pool[] = {0.5f, 0.25f, -1.0f, 0.0f, 2.0f, -INFINITY, 0.125f, 3.0f};
    cascade_arena *arena = cascade_arena_create(0);
    Cascade__V1__Candidate *store = calloc(MAX, sizeof *store);
    Cascade__V1__Candidate **got = calloc(MAX, sizeof *got), **want = calloc(MAX, sizeof *want);
    uint64_t *ids = calloc(MAX, sizeof *ids), seed = 2463534242u;
    float *sc = calloc(MAX, sizeof *sc);
    assert_true(arena && store && got && want && ids && sc);
    for (size_t n = 0; n <= MAX; n += n < 70 ? 1 : n < 600 ? 53 : 397) {
        for (int shape = 0; shape < 3; shape++) {
            for (size_t i = 0; i < n; i++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                ids[i] = seed % (n / 4 + 2);
                sc[i] = seed % 13 == 0 ? NAN : pool[(seed >> 8) % 8];
                if (shape > 0) /* distinct scores, ascending or descending */
                    sc[i] = shape == 1 ? (float)i : (float)(n - i);
            }
            make(store, got, ids, sc, n);
            make(store, want, ids, sc, n);
            if (n > 0)
                qsort(want, n, sizeof *want, reference_cmp);
            assert_int_equal(cascade_request_sort_candidates(got, n, CASCADE_SCORE_RECALL, arena),
                             0);
            for (size_t i = 0; i < n; i++)
                if (got[i] != want[i])
                    fail_msg("n %zu, shape %d: position %zu differs", n, shape, i);
        }
        cascade_arena_reset(arena);
    }
    free(sc);
    free(ids);
    free(want);
    free(got);
    free(store);
    cascade_arena_destroy(arena);
}

/* cascade_request_sort_top's first `top` are the full sort's first `top`
 * (same candidates, same order) and the whole list is still a permutation
 * of the input: random lists with many ties in score and id, NaNs and
 * -inf, every top from 0 past n. */
static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_sort_top_matches_full_sort(void **state)
{
    (void)state;
    enum { MAX = 130 };
    static const float pool[] = {0.5f, 0.25f, -1.0f, 0.0f, 2.0f, -INFINITY};
    cascade_arena *arena = cascade_arena_create(0);
    Cascade__V1__Candidate store[MAX], *full[MAX], *top[MAX], *a[MAX], *b[MAX];
    uint64_t ids[MAX], seed = 88172645463325252u;
    float sc[MAX];
    assert_non_null(arena);
    for (size_t n = 0; n <= MAX; n += n < 20 ? 1 : 37) {
        for (size_t i = 0; i < n; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            ids[i] = seed % 5;
            sc[i] = seed % 11 == 0 ? NAN : pool[(seed >> 8) % 6];
        }
        make(store, full, ids, sc, n);
        assert_int_equal(cascade_request_sort_candidates(full, n, CASCADE_SCORE_PRERANK, arena), 0);
        for (size_t t = 0; t <= n + 2; t++) {
            make(store, top, ids, sc, n);
            assert_int_equal(cascade_request_sort_top(top, n, t, CASCADE_SCORE_PRERANK, arena), 0);
            for (size_t i = 0; i < t && i < n; i++)
                if (top[i] != full[i])
                    fail_msg("n %zu, top %zu: position %zu differs", n, t, i);
            memcpy(a, top, n * sizeof *a);
            memcpy(b, full, n * sizeof *b);
            if (n > 0) {
                qsort(a, n, sizeof *a, ptr_cmp);
                qsort(b, n, sizeof *b, ptr_cmp);
                assert_memory_equal(a, b, n * sizeof *a);
            }
        }
    }
    cascade_arena_destroy(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_user),
        cmocka_unit_test(test_check_user_id_names_the_field),
        cmocka_unit_test(test_check_candidates),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_request_id_valid),
        cmocka_unit_test(test_check_user_fields),
        cmocka_unit_test(test_check_candidate_fields),
        cmocka_unit_test(test_check_experiments),
        cmocka_unit_test(test_expand_signals),
        cmocka_unit_test(test_sort_order),
        cmocka_unit_test(test_sort_nan_last),
        cmocka_unit_test(test_sort_top_matches_full_sort),
        cmocka_unit_test(test_sort_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
