/* Seeding and request helpers shared by the Recall unit tests: write the
 * builder families' keys (through the store.h key builders) and the live
 * per-user keys into a private redis-server, build requests, run the stage.
 * Header-only (static functions) so each test executable stays one file;
 * include after cmocka.h. */
#ifndef CASCADE_TEST_RECALL_SEED_H
#define CASCADE_TEST_RECALL_SEED_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "error.h"
#include "messages.h"
#include "recall.h"
#include "store.h"
#include "support.h"

#define NS "t"

/* A stage over pool from a JSON config text (NULL metrics unless given). */
static inline cascade_recall *seed_recall(cascade_redis_pool *pool, const char *ns,
                                          cascade_metrics *metrics, const char *json)
{
    char err[256] = "";
    cascade_config *cfg = cascade_config_parse(json, "test", err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    cascade_recall *r = cascade_recall_create(cfg, pool, ns, metrics, err, sizeof err);
    cascade_config_destroy(cfg);
    if (!r)
        fail_msg("cascade_recall_create: %s", err);
    return r;
}

/* {NS}:{family}@{gen}[:suffix] into buf. */
static inline char *seed_key(char *buf, const char *family, int64_t gen, const char *suffix)
{
    return cascade_key_artefact(buf, NS, family, gen, suffix);
}

static inline void seed_ok(int rc, cascade_redis *r, const char *what)
{
    if (rc != 0)
        fail_msg("seeding %s: %s (%s)", what, cascade_strerror(rc), cascade_redis_error(r));
}

static inline void seed_zadd(cascade_redis *r, const char *key, double score, uint64_t id)
{
    redisReply *rep = NULL;
    seed_ok(cascade_redis_command(r, &rep, "ZADD %s %f %llu", key, score, (unsigned long long)id),
            r, key);
    freeReplyObject(rep);
}

static inline void seed_set(cascade_redis *r, const char *key, const void *buf, size_t len)
{
    redisReply *rep = NULL;
    seed_ok(cascade_redis_command(r, &rep, "SET %s %b", key, buf, len), r, key);
    freeReplyObject(rep);
}

/* A NeighbourList of (ids[i], scores[i]) at key. */
static inline void seed_nlist(cascade_redis *r, const char *key, const uint64_t *ids,
                              const float *scores, size_t n)
{
    cascade_v1_NeighbourList l = cascade_v1_NeighbourList_init_zero;
    uint8_t buf[cascade_v1_NeighbourList_size];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        l.neighbours[i].item_id = ids[i];
        l.neighbours[i].score = scores[i];
    }
    l.neighbours_count = (pb_size_t)n;
    assert_int_equal(
        cascade_record_encode(cascade_v1_NeighbourList_fields, &l, buf, sizeof buf, &len), 0);
    seed_set(r, key, buf, len);
}

/* The neighbour list of item (or author list) `suffix` of a family/gen. */
static inline void seed_family_nlist(cascade_redis *r, const char *family, int64_t gen,
                                     const char *suffix, const uint64_t *ids, const float *scores,
                                     size_t n)
{
    char key[CASCADE_KEY_MAX];
    seed_nlist(r, seed_key(key, family, gen, suffix), ids, scores, n);
}

static inline void seed_item_nlist(cascade_redis *r, const char *family, int64_t gen, uint64_t item,
                                   const uint64_t *ids, const float *scores, size_t n)
{
    char suffix[24];
    snprintf(suffix, sizeof suffix, "%" PRIu64, item);
    seed_family_nlist(r, family, gen, suffix, ids, scores, n);
}

/* {NS}:usercf@{gen}:{uid} = UserNeighbourList(users[i], scores[i]). */
static inline void seed_user_neighbours(cascade_redis *r, int64_t gen, const char *uid,
                                        const char *const *users, const float *scores, size_t n)
{
    cascade_v1_UserNeighbourList l = cascade_v1_UserNeighbourList_init_zero;
    uint8_t buf[cascade_v1_UserNeighbourList_size];
    size_t len = 0;
    char key[CASCADE_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(l.neighbours[i].user_id, sizeof l.neighbours[i].user_id, "%s", users[i]);
        l.neighbours[i].score = scores[i];
    }
    l.neighbours_count = (pb_size_t)n;
    assert_int_equal(
        cascade_record_encode(cascade_v1_UserNeighbourList_fields, &l, buf, sizeof buf, &len), 0);
    seed_set(r, seed_key(key, "usercf", gen, uid), buf, len);
}

/* Append an interaction to the user's last-n (newest first). */
static inline void seed_push(cascade_redis *r, const char *user, uint64_t item, float weight)
{
    cascade_v1_Interaction it = cascade_v1_Interaction_init_zero;
    it.item_id = item;
    it.type = 2;
    it.time_s = 1700000000;
    it.weight = weight;
    seed_ok(cascade_store_push_interaction(r, NS, user, &it, 100), r, "last-n");
}

/* A profile; geohash may be NULL. */
static inline void seed_profile(cascade_redis *r, const char *uid, uint32_t age, uint32_t gender,
                                uint32_t city, const char *geohash, const uint32_t *interests,
                                size_t n_interests)
{
    cascade_v1_UserRecord u = cascade_v1_UserRecord_init_zero;
    snprintf(u.user_id, sizeof u.user_id, "%s", uid);
    u.age = age;
    u.gender = gender;
    u.city = city;
    snprintf(u.geohash, sizeof u.geohash, "%s", geohash ? geohash : "");
    for (size_t i = 0; i < n_interests; i++)
        u.interests[i] = interests[i];
    u.interests_count = (pb_size_t)n_interests;
    seed_ok(cascade_store_put_user(r, NS, &u), r, "profile");
}

static inline void seed_publish(cascade_redis *r, const char *family, int64_t gen)
{
    seed_ok(cascade_store_publish_generation(r, NS, family, gen), r, family);
}

/* A request for user `uid` (NULL = no user submessage), arena-allocated. */
static inline Cascade__V1__RecallRequest *seed_request(cascade_arena *a, const char *uid,
                                                       uint32_t quota, size_t n,
                                                       const char *const *channels)
{
    Cascade__V1__RecallRequest *req = cascade_arena_alloc(a, sizeof *req);
    cascade__v1__recall_request__init(req);
    req->user = test_user_context(a, uid, 0);
    req->quota = quota;
    req->n_channels = n;
    req->channels = cascade_arena_calloc(a, n + 1, sizeof *req->channels);
    for (size_t i = 0; i < n; i++)
        req->channels[i] = cascade_arena_strdup(a, channels[i]);
    return req;
}

/* A batched request (channel_specs) for uid: channel i with quotas[i] and
 * no time budget of its own. */
static inline Cascade__V1__RecallRequest *seed_spec_request(cascade_arena *a, const char *uid,
                                                            size_t n, const char *const *channels,
                                                            const uint32_t *quotas)
{
    Cascade__V1__RecallRequest *req = seed_request(a, uid, 0, 0, NULL);
    req->n_channel_specs = n;
    req->channel_specs = cascade_arena_calloc(a, n + 1, sizeof *req->channel_specs);
    for (size_t i = 0; i < n; i++) {
        Cascade__V1__ChannelSpec *spec = cascade_arena_alloc(a, sizeof *spec);
        cascade__v1__channel_spec__init(spec);
        spec->channel = cascade_arena_strdup(a, channels[i]);
        spec->quota = quotas[i];
        req->channel_specs[i] = spec;
    }
    return req;
}

/* Run one channel for uid and return the response (asserting success). */
static inline Cascade__V1__RecallResponse *seed_run1(cascade_recall *r, cascade_arena *a,
                                                     Cascade__V1__RecallRequest *req)
{
    char err[512] = "";
    Cascade__V1__RecallResponse *resp = NULL;
    int rc = cascade_recall_run(r, a, INT64_MAX, req, &resp, err, sizeof err);
    if (rc != 0)
        fail_msg("recall run: %s: %s", cascade_strerror(rc), err);
    return resp;
}

/* Assert the response holds exactly ids[0..n) in order, with channel-hit
 * scores[i] (within 1e-5) from `channel`. */
static inline void seed_expect(const Cascade__V1__RecallResponse *resp, const char *channel,
                               const uint64_t *ids, const float *scores, size_t n)
{
    if (resp->n_candidates != n) {
        for (size_t i = 0; i < resp->n_candidates; i++)
            print_message("  got %" PRIu64 " %f\n", resp->candidates[i]->item_id,
                          (double)resp->candidates[i]->channels[0]->score);
    }
    assert_int_equal(resp->n_candidates, n);
    for (size_t i = 0; i < n; i++) {
        const Cascade__V1__Candidate *c = resp->candidates[i];
        assert_int_equal(c->item_id, ids[i]);
        assert_int_equal(c->n_channels, 1);
        assert_string_equal(c->channels[0]->channel, channel);
        assert_int_equal(c->channels[0]->rank, i);
        if (scores)
            assert_float_equal(c->channels[0]->score, scores[i], 1e-5);
    }
    assert_int_equal(resp->n_channels, 1);
    assert_string_equal(resp->channels[0]->channel, channel);
    assert_int_equal(resp->channels[0]->count, n);
}

#endif
