/* The fuzz targets: protobuf-c request decoders followed by the stage's own
 * validation and run function, and the nanopb record decoders (with the
 * recall stage's hand-written NeighbourList decoder checked against nanopb's). */
#include "fuzz_targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "cascade/v1/records.pb.h"
#include "error.h"
#include "filter.h"
#include "log.h"
#include "orchestrator.h"
#include "prerank.h"
#include "rank.h"
#include "recall.h"
#include "redis.h"
#include "rerank.h"
#include "rpc.h"
#include "store.h"

/* The server's default per-request memory cap (rpc.h arena_limit_bytes). */
#define FUZZ_ARENA_LIMIT (256u * 1024 * 1024)

/* Process state of the fuzzer: one of each stage, built once. A fuzz binary
 * is a single-purpose process, so this is the "main" that owns them. */
static struct {
    bool ready;
    int dead_fd; /* bound, never listening: connections to it are refused */
    cascade_redis_pool *redis;
    cascade_arena *arena;
    cascade_recall *recall;
    cascade_filter *filter;
    cascade_prerank *prerank;
    cascade_rank *rank;
    cascade_rerank *rerank;
    cascade_orch *orch;
    char model_dir[64]; /* empty: rank serves its heuristic */
} fz = {.dead_fd = -1};

/* A loopback port nobody can be listening on: we hold it bound. */
static int bind_dead_port(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int cascade_fuzz_init(void)
{
    char err[512] = "";
    int port = 0;
    if (fz.ready)
        return 0;
    cascade_log_init("fuzz", CASCADE_LOG_ERROR);
    cascade_rpc_init();
    fz.dead_fd = bind_dead_port(&port);
    if (fz.dead_fd < 0) {
        fprintf(stderr, "fuzz: cannot bind a loopback port\n");
        return CASCADE_EIO;
    }
    struct cascade_redis_opts opts = {
        .host = "127.0.0.1", .port = port, .connect_timeout_ms = 50, .command_timeout_ms = 50};
    fz.redis = cascade_redis_pool_create(&opts);
    fz.arena = cascade_arena_create(0);
    if (!fz.redis || !fz.arena)
        goto nomem;
    snprintf(fz.model_dir, sizeof fz.model_dir, "/tmp/cascade-fuzz-XXXXXX");
    if (!mkdtemp(fz.model_dir)) {
        fprintf(stderr, "fuzz: mkdtemp %s failed\n", fz.model_dir);
        fz.model_dir[0] = '\0';
        cascade_fuzz_shutdown();
        return CASCADE_EIO;
    }
    if (!(fz.recall = cascade_recall_create(NULL, fz.redis, "fuzz", NULL, err, sizeof err)) ||
        !(fz.filter = cascade_filter_create(NULL, fz.redis, "fuzz", NULL, err, sizeof err)) ||
        !(fz.prerank =
              cascade_prerank_create(NULL, fz.redis, "fuzz", NULL, NULL, err, sizeof err)) ||
        !(fz.rank =
              cascade_rank_create(NULL, fz.redis, "fuzz", fz.model_dir, NULL, err, sizeof err)) ||
        !(fz.rerank = cascade_rerank_create(NULL, err, sizeof err)) ||
        !(fz.orch = cascade_orch_create(NULL, NULL, "fuzz", NULL, err, sizeof err))) {
        fprintf(stderr, "fuzz: creating the stages: %s\n", err);
        cascade_fuzz_shutdown();
        return CASCADE_EINVAL;
    }
    cascade_arena_set_limit(fz.arena, FUZZ_ARENA_LIMIT);
    fz.ready = true;
    return 0;
nomem:
    fprintf(stderr, "fuzz: out of memory\n");
    cascade_fuzz_shutdown();
    return CASCADE_ENOMEM;
}

void cascade_fuzz_shutdown(void)
{
    cascade_orch_destroy(fz.orch);
    cascade_rerank_destroy(fz.rerank);
    cascade_rank_destroy(fz.rank);
    cascade_prerank_destroy(fz.prerank);
    cascade_filter_destroy(fz.filter);
    cascade_recall_destroy(fz.recall);
    cascade_arena_destroy(fz.arena);
    cascade_redis_pool_destroy(fz.redis);
    if (fz.dead_fd >= 0)
        close(fz.dead_fd);
    if (fz.model_dir[0])
        rmdir(fz.model_dir);
    memset(&fz, 0, sizeof fz);
    fz.dead_fd = -1;
}

/* ------------------------------------------------------------------ requests */

/* Unpack like rpc_server.c: into the request arena, which is reset first. */
static const ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                      size_t size)
{
    if (cascade_fuzz_init() != 0)
        abort();
    cascade_arena_reset(fz.arena);
    return protobuf_c_message_unpack(d, cascade_arena_protobuf_allocator(fz.arena), size, data);
}

/* The verdict of a run function's return code: the validation errors are
 * EINVAL and ETOOBIG; anything else (UNAVAILABLE from the dead Redis, or
 * success) means the request got past validation. */
static int verdict_of(int rc)
{
    return rc == CASCADE_EINVAL || rc == CASCADE_ETOOBIG ? CASCADE_FUZZ_REJECTED
                                                         : CASCADE_FUZZ_PASSED;
}

/* No deadline: the run functions stop at the first Redis command anyway. */
#define NO_DEADLINE INT64_MAX

/* A target for a stage whose run function has the common shape
 * (stage, arena, deadline, request, &response, err, errlen). */
#define STAGE_TARGET(fn, stage, descriptor, run, req_type, resp_type)                              \
    static int fn(const uint8_t *data, size_t size)                                                \
    {                                                                                              \
        char err[512];                                                                             \
        resp_type *out = NULL;                                                                     \
        const ProtobufCMessage *m = unpack(&descriptor, data, size);                               \
        if (!m)                                                                                    \
            return CASCADE_FUZZ_UNDECODABLE;                                                       \
        return verdict_of(                                                                         \
            run(fz.stage, fz.arena, NO_DEADLINE, (const req_type *)m, &out, err, sizeof err));     \
    }

STAGE_TARGET(run_recall, recall, cascade__v1__recall_request__descriptor, cascade_recall_run,
             Cascade__V1__RecallRequest, Cascade__V1__RecallResponse)
STAGE_TARGET(run_filter, filter, cascade__v1__filter_request__descriptor, cascade_filter_run,
             Cascade__V1__FilterRequest, Cascade__V1__FilterResponse)
STAGE_TARGET(run_record_exposure, filter, cascade__v1__record_exposure_request__descriptor,
             cascade_filter_record, Cascade__V1__RecordExposureRequest,
             Cascade__V1__RecordExposureResponse)
STAGE_TARGET(run_prerank, prerank, cascade__v1__pre_rank_request__descriptor, cascade_prerank_run,
             Cascade__V1__PreRankRequest, Cascade__V1__PreRankResponse)
STAGE_TARGET(run_rank, rank, cascade__v1__rank_request__descriptor, cascade_rank_run,
             Cascade__V1__RankRequest, Cascade__V1__RankResponse)

/* Re-rank needs no Redis: the whole stage runs, and the answer is checked
 * against the request (never more than count, only request candidates). */
static int run_rerank(const uint8_t *data, size_t size)
{
    char err[512];
    Cascade__V1__ReRankResponse *out = NULL;
    const ProtobufCMessage *m = unpack(&cascade__v1__re_rank_request__descriptor, data, size);
    if (!m)
        return CASCADE_FUZZ_UNDECODABLE;
    const Cascade__V1__ReRankRequest *req = (const Cascade__V1__ReRankRequest *)m;
    int rc = cascade_rerank_run(fz.rerank, fz.arena, NO_DEADLINE, req, &out, err, sizeof err);
    if (rc == 0 && (out->n_candidates > req->count || out->n_candidates > req->n_candidates))
        abort();
    return verdict_of(rc);
}

/* The orchestrator has no Redis and its stage channels are never reached: a
 * deadline already past makes Recommend degrade straight to the (missing)
 * fallback once validation and setup are done. */
static int run_recommend(const uint8_t *data, size_t size)
{
    char err[512];
    Cascade__V1__RecommendResponse *out = NULL;
    const ProtobufCMessage *m = unpack(&cascade__v1__recommend_request__descriptor, data, size);
    if (!m)
        return CASCADE_FUZZ_UNDECODABLE;
    struct cascade_orch_call call = {
        .arena = fz.arena, .deadline_ms = 0, .request_id = NULL, .err = err, .errlen = sizeof err};
    return verdict_of(
        cascade_orch_recommend(fz.orch, &call, (const Cascade__V1__RecommendRequest *)m, &out));
}

static int run_feedback(const uint8_t *data, size_t size)
{
    char err[512];
    Cascade__V1__FeedbackResponse *out = NULL;
    const ProtobufCMessage *m = unpack(&cascade__v1__feedback_request__descriptor, data, size);
    if (!m)
        return CASCADE_FUZZ_UNDECODABLE;
    struct cascade_orch_call call = {.arena = fz.arena,
                                     .deadline_ms = NO_DEADLINE,
                                     .request_id = NULL,
                                     .err = err,
                                     .errlen = sizeof err};
    return verdict_of(
        cascade_orch_feedback(fz.orch, &call, (const Cascade__V1__FeedbackRequest *)m, &out));
}

/* ------------------------------------------------------------------ records */

/* Decode a record; when it decodes, encode it again (into buf, cap bytes;
 * *len set) and decode that: what the store writes back must read back. */
static int run_record(const pb_msgdesc_t *fields, void *msg, void *again, size_t msg_size,
                      const uint8_t *data, size_t size, uint8_t *buf, size_t cap, size_t *len)
{
    memset(msg, 0, msg_size);
    if (cascade_record_decode(fields, msg, data, size) != 0)
        return CASCADE_FUZZ_UNDECODABLE;
    if (cascade_record_encode(fields, msg, buf, cap, len) != 0)
        abort();
    memset(again, 0, msg_size);
    if (cascade_record_decode(fields, again, buf, *len) != 0)
        abort();
    return CASCADE_FUZZ_PASSED;
}

/* Records are at most a few KiB (the largest, a 200-entry NeighbourList, is
 * under 4 KiB); the fuzzer's inputs are capped at 16 KiB. */
static uint8_t reencoded[16384];

#define RECORD_TARGET(fn, type)                                                                    \
    static int fn(const uint8_t *data, size_t size)                                                \
    {                                                                                              \
        static type msg, again;                                                                    \
        size_t len = 0;                                                                            \
        return run_record(type##_fields, &msg, &again, sizeof msg, data, size, reencoded,          \
                          sizeof reencoded, &len);                                                 \
    }

RECORD_TARGET(run_item_record, cascade_v1_ItemRecord)
RECORD_TARGET(run_user_record, cascade_v1_UserRecord)
RECORD_TARGET(run_interaction, cascade_v1_Interaction)
RECORD_TARGET(run_user_neighbour_list, cascade_v1_UserNeighbourList)

/* NeighbourList through nanopb and through recall's own decoder. The recall
 * decoder must survive any bytes and never report more than max entries.
 * nanopb is the more lenient reader (it accepts, for instance, a tag varint
 * padded past 32 bits), so the two are compared on what the builder
 * actually writes: nanopb's encoding of the decoded list, which the recall
 * decoder must read back entry for entry. */
static int run_neighbour_list(const uint8_t *data, size_t size)
{
    enum { MAX = 200 };
    static cascade_v1_NeighbourList list, again;
    uint64_t ids[MAX];
    float scores[MAX];
    size_t count = 0, len = 0;
    int raw_rc = cascade_recall_decode_neighbours(data, size, MAX, ids, scores, &count);
    if (raw_rc == 0 && count > MAX)
        abort();
    int v = run_record(cascade_v1_NeighbourList_fields, &list, &again, sizeof list, data, size,
                       reencoded, sizeof reencoded, &len);
    if (v != CASCADE_FUZZ_PASSED)
        return raw_rc == 0 ? CASCADE_FUZZ_PASSED : v;
    if (cascade_recall_decode_neighbours(reencoded, len, MAX, ids, scores, &count) != 0 ||
        count != list.neighbours_count)
        abort();
    for (size_t i = 0; i < count; i++)
        if (ids[i] != list.neighbours[i].item_id ||
            memcmp(&scores[i], &list.neighbours[i].score, sizeof(float)) != 0)
            abort();
    return CASCADE_FUZZ_PASSED;
}

static const struct cascade_fuzz_target targets[] = {
    {"recall_request", run_recall},
    {"filter_request", run_filter},
    {"record_exposure_request", run_record_exposure},
    {"prerank_request", run_prerank},
    {"rank_request", run_rank},
    {"rerank_request", run_rerank},
    {"recommend_request", run_recommend},
    {"feedback_request", run_feedback},
    {"item_record", run_item_record},
    {"user_record", run_user_record},
    {"interaction", run_interaction},
    {"neighbour_list", run_neighbour_list},
    {"user_neighbour_list", run_user_neighbour_list},
};

const struct cascade_fuzz_target *cascade_fuzz_targets(size_t *n)
{
    *n = sizeof targets / sizeof targets[0];
    return targets;
}

const struct cascade_fuzz_target *cascade_fuzz_target_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(targets[i].name, name) == 0)
            return &targets[i];
    return NULL;
}
