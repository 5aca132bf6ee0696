/* Seed corpus generator: a few valid requests per service (with candidates,
 * embeddings, experiment parameters) and valid Redis records, serialized by
 * protobuf-c and nanopb exactly as the callers and the builder write them. */
#include "fuzz_seeds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "arena.h"
#include "cascade/v1/filter.pb-c.h"
#include "cascade/v1/prerank.pb-c.h"
#include "cascade/v1/rank.pb-c.h"
#include "cascade/v1/recall.pb-c.h"
#include "cascade/v1/recommender.pb-c.h"
#include "cascade/v1/records.pb.h"
#include "cascade/v1/rerank.pb-c.h"
#include "error.h"
#include "messages.h"
#include "store.h"

static const uint64_t seed_ids[] = {11, 12, 13, 14, 15, 12};
#define N_IDS (sizeof seed_ids / sizeof seed_ids[0])

struct walk {
    cascade_fuzz_seed_fn fn;
    void *ctx;
    cascade_arena *arena;
};

static int emit_message(struct walk *w, const char *target, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = cascade_arena_alloc(w->arena, len + 1);
    if (!buf)
        return CASCADE_ENOMEM;
    protobuf_c_message_pack(m, buf);
    return w->fn(w->ctx, target, buf, len);
}

static int emit_record(struct walk *w, const char *target, const pb_msgdesc_t *fields,
                       const void *rec)
{
    static uint8_t buf[16384];
    size_t len = 0;
    int rc = cascade_record_encode(fields, rec, buf, sizeof buf, &len);
    return rc ? rc : w->fn(w->ctx, target, buf, len);
}

/* Candidates with attributes (author, category, a small embedding) and
 * per-stage scores, the way the orchestrator forwards them. */
static Cascade__V1__Candidate **rich_candidates(cascade_arena *a)
{
    static float emb[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0}, {0, 1, 0}, {0, 0, 1}};
    Cascade__V1__Candidate **c = test_candidates(a, seed_ids, N_IDS);
    for (size_t i = 0; c && i < N_IDS; i++) {
        Cascade__V1__ItemAttributes *at = cascade_arena_alloc(a, sizeof *at);
        if (!at)
            return NULL;
        cascade__v1__item_attributes__init(at);
        at->author_id = 100 + i % 3;
        at->category = 1 + (uint32_t)(i % 2);
        at->n_embedding = 3;
        at->embedding = emb[i % 4];
        c[i]->attrs = at;
        c[i]->recall_score = c[i]->prerank_score = 1.0f / (float)(i + 1);
        c[i]->rank_score = 0.9f - 0.1f * (float)i;
    }
    return c;
}

static int request_seeds(struct walk *w)
{
    cascade_arena *a = w->arena;
    Cascade__V1__UserContext *user = test_user_context(a, "u1", 1700000000);
    Cascade__V1__ExperimentContext *exp =
        test_experiment(a, "rerank", "mmr-low", "rerank.lambda", "0.3");
    Cascade__V1__Candidate **cands = rich_candidates(a);
    if (!user || !exp || !cands)
        return CASCADE_ENOMEM;
    user->geohash = "wx4g0b";
    user->city = 110000;
    user->request_id = "req-1";
    int rc = 0;

    static char *channels[] = {"hot", "itemcf", "usercf", "geo"};
    Cascade__V1__RecallRequest recall = CASCADE__V1__RECALL_REQUEST__INIT;
    recall.user = user;
    recall.channels = channels;
    recall.n_channels = 4;
    recall.quota = 50;
    if ((rc = emit_message(w, "recall_request", &recall.base)))
        return rc;
    recall.n_channels = 1;
    recall.experiments = exp;
    if ((rc = emit_message(w, "recall_request", &recall.base)))
        return rc;

    Cascade__V1__FilterRequest filter = CASCADE__V1__FILTER_REQUEST__INIT;
    filter.user = user;
    filter.candidates = cands;
    filter.n_candidates = N_IDS;
    if ((rc = emit_message(w, "filter_request", &filter.base)))
        return rc;

    Cascade__V1__RecordExposureRequest expo = CASCADE__V1__RECORD_EXPOSURE_REQUEST__INIT;
    expo.user_id = "u1";
    expo.item_ids = (uint64_t *)seed_ids;
    expo.n_item_ids = N_IDS;
    expo.time_s = 1700000000;
    if ((rc = emit_message(w, "record_exposure_request", &expo.base)))
        return rc;

    Cascade__V1__PreRankRequest pre = CASCADE__V1__PRE_RANK_REQUEST__INIT;
    pre.user = user;
    pre.candidates = cands;
    pre.n_candidates = N_IDS;
    pre.keep = 3;
    if ((rc = emit_message(w, "prerank_request", &pre.base)))
        return rc;
    float seed_recall[N_IDS] = {0};
    pre.candidates = NULL; /* the same candidates as packed columns */
    pre.n_candidates = 0;
    pre.item_ids = (uint64_t *)seed_ids;
    pre.n_item_ids = N_IDS;
    pre.recall_scores = seed_recall;
    pre.n_recall_scores = N_IDS;
    if ((rc = emit_message(w, "prerank_request", &pre.base)))
        return rc;

    Cascade__V1__RankRequest rank = CASCADE__V1__RANK_REQUEST__INIT;
    rank.user = user;
    rank.candidates = cands;
    rank.n_candidates = N_IDS;
    rank.keep = 4;
    if ((rc = emit_message(w, "rank_request", &rank.base)))
        return rc;
    rank.candidates = NULL; /* the same candidates as packed columns */
    rank.n_candidates = 0;
    rank.item_ids = (uint64_t *)seed_ids;
    rank.n_item_ids = N_IDS;
    rank.recall_scores = seed_recall;
    rank.n_recall_scores = N_IDS;
    if ((rc = emit_message(w, "rank_request", &rank.base)))
        return rc;

    Cascade__V1__ReRankRequest rerank = CASCADE__V1__RE_RANK_REQUEST__INIT;
    rerank.user = user;
    rerank.candidates = cands;
    rerank.n_candidates = N_IDS;
    rerank.count = 4;
    if ((rc = emit_message(w, "rerank_request", &rerank.base)))
        return rc;
    rerank.experiments = exp;
    if ((rc = emit_message(w, "rerank_request", &rerank.base)))
        return rc;

    Cascade__V1__RecommendRequest rec = CASCADE__V1__RECOMMEND_REQUEST__INIT;
    rec.user = user;
    rec.count = 10;
    rec.debug = 1;
    if ((rc = emit_message(w, "recommend_request", &rec.base)))
        return rc;
    /* With slots (RecommendRequest.slots), so mutations reach their checks. */
    Cascade__V1__Slot slot[2];
    Cascade__V1__Slot *slotp[2] = {&slot[0], &slot[1]};
    for (size_t i = 0; i < 2; i++) {
        cascade__v1__slot__init(&slot[i]);
        slot[i].position = (uint32_t)(i * 5);
        slot[i].item_id = seed_ids[i];
        slot[i].source = i ? "ops:launch" : "ads";
    }
    rec.slots = slotp;
    rec.n_slots = 2;
    if ((rc = emit_message(w, "recommend_request", &rec.base)))
        return rc;

    Cascade__V1__Event ev[3];
    Cascade__V1__Event *evp[3];
    for (size_t i = 0; i < 3; i++) {
        cascade__v1__event__init(&ev[i]);
        ev[i].user_id = "u1";
        ev[i].item_id = seed_ids[i];
        ev[i].type = (Cascade__V1__EventType)(2 + i * 3); /* click, follow, hide_author */
        ev[i].value = 12.5f;
        ev[i].time_s = 0; /* server time: a fixed past time would age out of Feedback's window */
        ev[i].request_id = "req-1";
        evp[i] = &ev[i];
    }
    Cascade__V1__FeedbackRequest fb = CASCADE__V1__FEEDBACK_REQUEST__INIT;
    fb.events = evp;
    fb.n_events = 3;
    return emit_message(w, "feedback_request", &fb.base);
}

static int record_seeds(struct walk *w)
{
    int rc;
    cascade_v1_ItemRecord item = cascade_v1_ItemRecord_init_zero;
    item.item_id = 11;
    item.author_id = 100;
    item.category = 2;
    item.tags_count = 2;
    item.tags[0] = 7;
    item.tags[1] = 9;
    item.created_at_s = 1700000000;
    strcpy(item.geohash, "wx4g0b");
    item.has_stats = true;
    item.stats.impressions = 40;
    item.stats.clicks = 3;
    item.stats.play_seconds = 61.5f;
    if ((rc = emit_record(w, "item_record", cascade_v1_ItemRecord_fields, &item)))
        return rc;

    cascade_v1_UserRecord user = cascade_v1_UserRecord_init_zero;
    strcpy(user.user_id, "u1");
    user.age = 31;
    user.gender = 2;
    user.city = 110000;
    strcpy(user.geohash, "wx4g0b");
    user.interests_count = 2;
    user.interests[0] = 1;
    user.interests[1] = 4;
    user.affinities_count = 1;
    user.affinities[0].category = 1;
    user.affinities[0].weight = 0.7f;
    if ((rc = emit_record(w, "user_record", cascade_v1_UserRecord_fields, &user)))
        return rc;

    cascade_v1_Interaction in = {.item_id = 12, .type = 3, .time_s = 1700000000, .weight = 2};
    if ((rc = emit_record(w, "interaction", cascade_v1_Interaction_fields, &in)))
        return rc;

    static cascade_v1_NeighbourList nl;
    memset(&nl, 0, sizeof nl);
    nl.neighbours_count = 3;
    for (size_t i = 0; i < 3; i++)
        nl.neighbours[i] =
            (cascade_v1_Neighbour){.item_id = seed_ids[i], .score = 0.5f / (float)(i + 1)};
    if ((rc = emit_record(w, "neighbour_list", cascade_v1_NeighbourList_fields, &nl)))
        return rc;

    static cascade_v1_UserNeighbourList ul;
    memset(&ul, 0, sizeof ul);
    ul.neighbours_count = 2;
    strcpy(ul.neighbours[0].user_id, "u2");
    ul.neighbours[0].score = 0.8f;
    strcpy(ul.neighbours[1].user_id, "u3");
    ul.neighbours[1].score = 0.4f;
    return emit_record(w, "user_neighbour_list", cascade_v1_UserNeighbourList_fields, &ul);
}

int cascade_fuzz_seeds_each(cascade_fuzz_seed_fn fn, void *ctx)
{
    struct walk w = {.fn = fn, .ctx = ctx, .arena = cascade_arena_create(0)};
    if (!w.arena)
        return CASCADE_ENOMEM;
    int rc = request_seeds(&w);
    if (rc == 0)
        rc = record_seeds(&w);
    cascade_arena_destroy(w.arena);
    return rc;
}

struct writer {
    const char *dir;
    unsigned n;
};

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int write_seed(void *ctx, const char *target, const uint8_t *data, size_t size)
{
    struct writer *wr = ctx;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", wr->dir, target);
    if (mkdir_ok(path) != 0) {
        fprintf(stderr, "fuzz seeds: mkdir %s: %s\n", path, strerror(errno));
        return CASCADE_EIO;
    }
    snprintf(path, sizeof path, "%s/%s/seed-%u", wr->dir, target, wr->n++);
    FILE *f = fopen(path, "wb");
    int rc = f && fwrite(data, 1, size, f) == size ? 0 : CASCADE_EIO;
    if (f && fclose(f) != 0)
        rc = CASCADE_EIO;
    if (rc != 0)
        fprintf(stderr, "fuzz seeds: writing %s: %s\n", path, strerror(errno));
    return rc;
}

int cascade_fuzz_seeds_write(const char *dir)
{
    struct writer wr = {.dir = dir};
    if (mkdir_ok(dir) != 0) {
        fprintf(stderr, "fuzz seeds: mkdir %s: %s\n", dir, strerror(errno));
        return CASCADE_EIO;
    }
    return cascade_fuzz_seeds_each(write_seed, &wr);
}
