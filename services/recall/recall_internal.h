/* Internals shared by the Recall stage's files: the stage struct, the channel
 * registry and its per-channel config, the generation and list caches, the Redis
 * pipeline helper and the selection helpers the channel files use. Not part
 * of the stage API. */
#ifndef CASCADE_RECALL_INTERNAL_H
#define CASCADE_RECALL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "idmap.h"
#include "list_cache.h"
#include "record_cache.h"
#include "recall.h"

/* Upper bound on registered channels (the registry is a static table). */
#define CASCADE_RECALL_MAX_CHANNELS 32

/* Builder families (common/store.h) whose generation a channel resolves. */
enum cascade_recall__family {
    CASCADE_RECALL_FAM_NONE = -1, /* live keys only (cache) */
    CASCADE_RECALL_FAM_ITEMCF,
    CASCADE_RECALL_FAM_SWING,
    CASCADE_RECALL_FAM_USERCF,
    CASCADE_RECALL_FAM_AUTHORS,
    CASCADE_RECALL_FAM_HOT,
    CASCADE_RECALL_FAM_NEW,
    CASCADE_RECALL_FAM_GEO,
    CASCADE_RECALL_FAM_CITY,
    CASCADE_RECALL_FAM_EASE,
    CASCADE_RECALL_N_FAMILIES
};

/* Name of a family as the builder publishes it ("itemcf", ...). */
const char *cascade_recall__family_name(enum cascade_recall__family f);

/* One channel's settings, recall.channels.<name>.* (only the keys a channel
 * documents are read for it; the others keep their defaults). */
struct cascade_recall__channel_cfg {
    bool enabled;
    uint32_t last_n;          /* itemcf, swing, ease, usercf: recent interactions read per user */
    uint32_t neighbours;      /* itemcf, swing, ease, similar_author: neighbours used per source */
    uint32_t users;           /* usercf: similar users expanded */
    uint32_t precision;       /* geo: geohash characters of a cell */
    uint32_t max_authors;     /* author channels: authors whose items are read */
    uint32_t per_author;      /* author channels: newest items read per author */
    uint32_t sources;         /* similar_author: interacted / followed authors used as seeds */
    uint32_t per_cell;        /* geo: newest items read from each neighbour cell */
    uint32_t max_impressions; /* new: "few impressions" bound for exploration */
    double explore_share;     /* new: share of the quota reserved for little-shown items */
    uint32_t explore_pool;    /* new: the E exploration items are drawn per user from the
                                 explore_pool·E least-shown ones */
    double half_life_s;       /* recency score half-life (new, geo, city, follow_author) */
};

/* Per-channel metric series (NULL without a registry: updates are no-ops). */
struct cascade_recall__channel_metrics {
    cascade_metric *requests, *candidates, *errors, *latency;
};

/* A cached generation number of one family. */
struct cascade_recall__gen_slot {
    pthread_mutex_t mu; /* held only to read or update the pair below */
    bool valid;
    int64_t gen;
    int64_t fetched_ms;
};

struct cascade_recall__two_tower; /* channel_two_tower.c: the loaded model and index */

struct cascade_recall {
    cascade_redis_pool *redis; /* borrowed */
    char ns[64];
    uint32_t max_quota;
    int64_t gen_ttl_ms; /* 0 = resolve on every request */
    struct cascade_recall__gen_slot gens[CASCADE_RECALL_N_FAMILIES];
    struct cascade_recall__channel_cfg cfg[CASCADE_RECALL_MAX_CHANNELS]; /* by registry index */
    struct cascade_recall__channel_metrics metrics[CASCADE_RECALL_MAX_CHANNELS];
    struct cascade_recall__two_tower *two_tower;
    cascade_list_cache *lists; /* decoded generation lists; NULL when recall.list_cache is off */
    size_t list_max_len;       /* longest list cached (recall.list_cache.max_len) */
    cascade_record_cache *profiles;                /* user records read recently; NULL = off */
    cascade_metric *profile_hits, *profile_misses; /* NULL without a registry */
    struct cascade_list_cache_metrics list_metrics;
    /* {ns}:items:online:rev as last read with a generation: PutItems wrote
     * into generation lists when it changes, so the list cache is cleared. */
    pthread_mutex_t online_mu;
    int64_t online_rev;
};

/* Request-scoped state shared by the channels of one request. */
struct cascade_recall__request_state {
    bool profile_loaded;
    bool profile_found;
    cascade_v1_UserRecord profile;
    /* The user's last-n as the first channel that asked read it (LRANGE 0
     * lastn_asked-1, decoded): itemcf, swing, ease and two_tower each read
     * it, and a later one takes a prefix (cascade_recall__user_lastn). */
    bool lastn_loaded;
    size_t lastn_asked;
    struct cascade_recall_hits lastn;
    /* From the prefetch (recall_prefetch.c), each used only when it was read
     * without any failure: the cache channel's LRANGE reply for cache_quota
     * (owned here until the channel takes it; released after the channels),
     * and usercf's similar-user list of generation neighbours_gen. */
    redisReply *cache_reply;
    size_t cache_quota;
    bool neighbours_loaded, neighbours_found;
    int64_t neighbours_gen;
    cascade_v1_UserNeighbourList *neighbours;
    /* The GET reply of the user's interacted authors of generation
     * interacted_gen, shared by interacted_author and similar_author (each
     * parses the entries it uses); released after the channels. */
    redisReply *interacted_reply;
    int64_t interacted_gen;
};

/* Everything a channel gets for one request. */
struct cascade_recall__channel_args {
    cascade_recall *recall;
    const char *name; /* the channel's registry name */
    const struct cascade_recall__channel_cfg *cfg;
    enum cascade_recall__family family;
    cascade_redis *redis;
    cascade_arena *arena;
    int64_t deadline_ms;
    const Cascade__V1__RecallRequest *req;
    const char *user_id;
    size_t quota;
    struct cascade_recall__request_state *state;
    char *err;
    size_t errlen;
};

/* A channel fills out (best first, at most args->quota) and returns 0, or a
 * negative code with a message in args->err. */
typedef int (*cascade_recall__channel_fn)(const struct cascade_recall__channel_args *args,
                                          struct cascade_recall_hits *out);

/* What a channel reads of the user's own live keys, for the request's
 * prefetch (recall_prefetch.c). */
enum cascade_recall__reads {
    CASCADE_RECALL_READS_PROFILE = 1,  /* {ns}:user:{uid} (cascade_recall__profile) */
    CASCADE_RECALL_READS_LASTN = 2,    /* last-n, cfg.last_n entries (cascade_recall__user_lastn) */
    CASCADE_RECALL_READS_CACHE = 4,    /* the cache channel's LRANGE -quota -1 */
    CASCADE_RECALL_READS_USERCF = 8,   /* usercf's similar-user list (and own last-n) */
    CASCADE_RECALL_READS_AUTHORS = 16, /* {ns}:authors@{gen}:interacted:{uid} */
};

/* The registry (recall.c). */
struct cascade_recall__channel_def {
    const char *name;
    enum cascade_recall__family family;
    cascade_recall__channel_fn fn;
    unsigned reads; /* enum cascade_recall__reads bits */
};
extern const struct cascade_recall__channel_def cascade_recall__channels[];
extern const size_t cascade_recall__n_channels;

/* Channels (one file per group). */
int cascade_recall__hot(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out);
int cascade_recall__demo_hot(const struct cascade_recall__channel_args *a,
                             struct cascade_recall_hits *out);
int cascade_recall__interest(const struct cascade_recall__channel_args *a,
                             struct cascade_recall_hits *out);
int cascade_recall__itemcf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out);
/* The neighbour lists of the planned itemcf, swing and ease channels (the
 * sources from the request's last-n) that the list cache lacks, read in one
 * pipelined round trip and left in the list cache, where each channel then
 * finds them instead of making its own round trip (channel_itemcf.c). Does
 * nothing with the list cache off, with fewer than two such channels, or
 * past their earliest deadline; a failure is left to the channels' own
 * reads. */
void cascade_recall__neighbours_prefetch(const struct cascade_recall__channel_args *base,
                                         const int *idx, const int64_t *deadline_ms, size_t n);

/* EASE: the itemcf expansion over the "ease" lists with every history item
 * weighing 1 (EASE's X is binary). */
int cascade_recall__ease(const struct cascade_recall__channel_args *a,
                         struct cascade_recall_hits *out);
int cascade_recall__usercf(const struct cascade_recall__channel_args *a,
                           struct cascade_recall_hits *out);
int cascade_recall__new(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out);
int cascade_recall__geo(const struct cascade_recall__channel_args *a,
                        struct cascade_recall_hits *out);
int cascade_recall__city(const struct cascade_recall__channel_args *a,
                         struct cascade_recall_hits *out);
int cascade_recall__follow_author(const struct cascade_recall__channel_args *a,
                                  struct cascade_recall_hits *out);
int cascade_recall__interacted_author(const struct cascade_recall__channel_args *a,
                                      struct cascade_recall_hits *out);
int cascade_recall__similar_author(const struct cascade_recall__channel_args *a,
                                   struct cascade_recall_hits *out);
int cascade_recall__cache(const struct cascade_recall__channel_args *a,
                          struct cascade_recall_hits *out);
int cascade_recall__two_tower(const struct cascade_recall__channel_args *a,
                              struct cascade_recall_hits *out);

/* The two_tower channel's state from recall.channels.two_tower.{model_dir,
 * nprobe, last_n, reload_ms} into r->two_tower, loading the newest published
 * model when there is one. 0 or CASCADE_EINVAL/ENOMEM with err. */
int cascade_recall__two_tower_create(cascade_recall *r, const cascade_config *cfg, char *err,
                                     size_t errlen);
/* Free it (NULL is a no-op). */
void cascade_recall__two_tower_destroy(struct cascade_recall__two_tower *t);

/* ------------------------------------------------------------ common steps */

/* The current generation of the channel's family, from the stage's cache when
 * younger than recall.generation_ttl_ms. *gen = 0 when never published (the
 * channel then returns nothing). Returns 0 or a channel error (see fail). */
int cascade_recall__generation(const struct cascade_recall__channel_args *a, int64_t *gen);

/* Key {ns}:{family}@{gen}[:suffix] of the channel's family, into the arena
 * (NULL when out of memory). */
char *cascade_recall__key(const struct cascade_recall__channel_args *a, int64_t gen,
                          const char *suffix);

/* The user's profile (GET {ns}:user:{uid}, once per request); *found false
 * for a user without one. Returns 0 or a channel error. */
int cascade_recall__profile(const struct cascade_recall__channel_args *a,
                            const cascade_v1_UserRecord **profile, bool *found);

/* Write "<channel>: <step>: <message>" to a->err and return the code a caller
 * sees: ENOMEM and ETIMEDOUT stay, anything else from Redis or a bad record
 * becomes EUNAVAILABLE. */
int cascade_recall__fail(const struct cascade_recall__channel_args *a, int rc, const char *step,
                         const char *message);

/* The user's last n interactions, newest first ({ns}:user:{uid}:lastn, LRANGE
 * 0 n-1, decoded): read once per request and kept in a->state, so a later
 * channel asking for at most as many (or for any number, when the list was
 * shorter than what was read) gets the first n of them without a round trip
 * — the same entries its own LRANGE would return in the same request. *out
 * is a copy in the request arena (the caller may change it). Returns 0, or
 * fails the channel as its own read would ("last-n: ..."). */
int cascade_recall__user_lastn(const struct cascade_recall__channel_args *a, size_t n,
                               struct cascade_recall_hits *out);

/* Whether cascade_recall__user_lastn(a, n) would answer without a round trip. */
bool cascade_recall__lastn_covered(const struct cascade_recall__channel_args *a, size_t n);

/* The request's prefetch: before the channels run, one pipelined round trip
 * reads what the n planned channels (registry indexes idx[] (-1: none),
 * quotas quota[], absolute deadlines deadline_ms[]) would read of the user's own keys one after
 * another — the profile (unless the profile cache holds it), the last-n
 * (the longest any of them asks), the cache list, usercf's similar users,
 * the interacted authors (both author channels parse the one reply) —
 * and keeps them in a->state, where those channels find them (the same
 * replies their own reads would get in this request). It waits at most until
 * the earliest deadline of the channels that use it. Best effort: anything
 * not read cleanly (an error reply, a bad record, a timeout) is left for the
 * channel's own read, which then fails or degrades as before. */
void cascade_recall__prefetch(const struct cascade_recall__channel_args *a, const int *idx,
                              const uint32_t *quota, const int64_t *deadline_ms, size_t n);

/* The prefetched GET reply of the user's interacted authors of generation
 * gen, or NULL (then the channel reads it). Borrowed from the request state. */
const redisReply *
cascade_recall__prefetched_interacted(const struct cascade_recall__channel_args *a, int64_t gen);

/* Free what the prefetch holds that no channel took (NULL-safe). */
void cascade_recall__prefetch_release(struct cascade_recall__request_state *st);

/* The profile, when the prefetch should read it: false when the request
 * state or the profile cache already holds it (marked loaded then). */
bool cascade_recall__profile_wanted(const struct cascade_recall__channel_args *a);

/* Take a GET reply of the user's record as the request's profile (and cache
 * it as cascade_recall__profile would). Returns 0, or CASCADE_EFORMAT for a
 * reply that is not a record (nothing is kept then). */
int cascade_recall__profile_take(const struct cascade_recall__channel_args *a,
                                 const redisReply *rep);

/* ENOMEM with "<channel>: out of request memory". */
int cascade_recall__nomem(const struct cascade_recall__channel_args *a);

/* ETIMEDOUT with "<channel>: deadline exceeded after <step>" when the
 * deadline passed, else 0. */
int cascade_recall__deadline(const struct cascade_recall__channel_args *a, const char *step);

/* ------------------------------------------------------------ pipelining
 * One round trip per step: queue every command, then read the replies in
 * order. After the first failure further commands are not queued, replies are
 * not handed out, and end() reads what is left so the connection stays usable. */
struct cascade_recall__pipe {
    cascade_redis *redis;
    size_t queued; /* appended and not yet read */
    int rc;        /* first failure (0 = none) */
    char msg[256]; /* its message */
};

void cascade_recall__pipe_init(struct cascade_recall__pipe *p, cascade_redis *redis);

/* Queue one command (argc <= 8 NUL-terminated strings). */
void cascade_recall__pipe_cmd(struct cascade_recall__pipe *p, int argc, const char *const *argv);

/* Queue one command of any length (binary-safe argv with lengths). */
void cascade_recall__pipe_argv(struct cascade_recall__pipe *p, int argc, const char **argv,
                               const size_t *lens);

/* The next reply (caller frees it with freeReplyObject), or NULL after a
 * failure; an error reply is a failure. */
redisReply *cascade_recall__pipe_reply(struct cascade_recall__pipe *p);

/* Record a failure found while reading a reply (first one wins). */
void cascade_recall__pipe_fail(struct cascade_recall__pipe *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Read and drop the replies still queued; returns the first failure or 0. */
int cascade_recall__pipe_end(struct cascade_recall__pipe *p);

/* Queue ZREVRANGE key 0 max-1 WITHSCORES (max >= 1). */
void cascade_recall__pipe_zrevrange(struct cascade_recall__pipe *p, const char *key, size_t max);

/* Queue LRANGE key first last. */
void cascade_recall__pipe_lrange(struct cascade_recall__pipe *p, const char *key, long long first,
                                 long long last);

/* Queue GET key. */
void cascade_recall__pipe_get(struct cascade_recall__pipe *p, const char *key);

/* A sorted set as read: members and raw Redis scores. */
struct cascade_recall__zlist {
    uint64_t *ids;
    double *scores;
    size_t count;
};

/* Read a ZREVRANGE ... WITHSCORES reply (missing key = empty) into out,
 * arena memory. Returns 0, or a failure recorded in p. */
int cascade_recall__read_zset(struct cascade_recall__pipe *p, cascade_arena *arena, const char *key,
                              struct cascade_recall__zlist *out);

/* ------------------------------------------------------------ list cache
 * (recall_lists.c) Only for keys of a published generation, whose contents
 * never change; never for the live per-user keys. */

/* The first max entries (ZREVRANGE key 0 max-1 WITHSCORES) of each of the n
 * sorted sets keys[i] into out[i] (arena copies): from the stage's list cache
 * where it holds them, the others in one pipelined round trip that caches
 * what it reads. deep reads recall.list_cache.max_len entries (at least
 * max[i]), for lists asked at many depths; else exactly max[i] (for many
 * small lists always asked at one depth, such as an author's newest items).
 * Returns 0 or a channel error naming `step`. */
int cascade_recall__zsets_top(const struct cascade_recall__channel_args *a, size_t n,
                              const char *const *keys, const size_t *max, bool deep,
                              const char *step, struct cascade_recall__zlist *out);

/* cascade_recall__zsets_top of one key, deep. */
int cascade_recall__zset_top(const struct cascade_recall__channel_args *a, const char *key,
                             size_t max, const char *step, struct cascade_recall__zlist *out);

/* A list the channel derived from generation keys only, cached under `key`
 * (which must name those keys and every parameter of the derivation): *hit
 * and an arena copy of its first `want` entries in out (want 0: all of
 * them; a complete list may have fewer) when cached. Returns 0 or ENOMEM (channel error). */
int cascade_recall__list_lookup(const struct cascade_recall__channel_args *a, const char *key,
                                size_t want, struct cascade_recall__zlist *out, bool *hit);

/* Cache a copy of list under key (complete: the whole list, not a prefix)
 * when the cache is on and the list is at most max_len long. Best effort:
 * a list that cannot be cached is simply not cached. */
void cascade_recall__list_store(const struct cascade_recall__channel_args *a, const char *key,
                                const struct cascade_recall__zlist *list, bool complete);

/* Read a GET reply holding a NeighbourList (nil = empty list): its first max
 * entries into out (ids and float scores), arena memory. */
int cascade_recall__read_neighbours(struct cascade_recall__pipe *p, cascade_arena *arena,
                                    const char *key, size_t max, struct cascade_recall_hits *out);

/* cascade_recall__read_neighbours of a reply already read (borrowed, not
 * freed): a bad one is a failure recorded in p. */
int cascade_recall__parse_neighbours(struct cascade_recall__pipe *p, cascade_arena *arena,
                                     const char *key, const redisReply *rep, size_t max,
                                     struct cascade_recall_hits *out);

/* Read an LRANGE reply of Interaction records into out: item ids and their
 * interest weights (a stored weight of 0 counts as 1). Arena memory. */
int cascade_recall__read_interactions(struct cascade_recall__pipe *p, cascade_arena *arena,
                                      const char *key, struct cascade_recall_hits *out);

/* Parse a decimal uint64 of exactly len bytes. Returns 0 or CASCADE_EFORMAT. */
int cascade_recall__parse_id(const char *s, size_t len, uint64_t *out);

/* Parse a Redis score reply of len bytes: integers (creation times) without
 * strtod, anything else with it. */
double cascade_recall__parse_score(const char *s, size_t len);

/* Decode one Interaction record's item id and weight (0 = unset) without
 * nanopb. Returns 0 or CASCADE_EFORMAT. */
int cascade_recall__decode_interaction(const uint8_t *buf, size_t len, uint64_t *item_id,
                                       float *weight);

/* ------------------------------------------------------------ selection */

/* The top `quota` entries of an accumulator map (entry->score), best first,
 * ties by smaller id, into out (arena memory). Returns 0 or CASCADE_ENOMEM. */
int cascade_recall__top_scores(const cascade_idmap *m, size_t quota, cascade_arena *arena,
                               struct cascade_recall_hits *out);

/* Merge sorted-set lists whose scores are creation times into one list,
 * newest first (ties: smaller id), an item appearing twice kept once, at most
 * quota items; the output score is recency 2^(−(t_newest − t)/half_life_s)
 * (1 for the newest item; half_life_s <= 0 gives 1 everywhere). Returns 0 or
 * CASCADE_ENOMEM. */
int cascade_recall__newest(const struct cascade_recall__zlist *lists, size_t n_lists, size_t quota,
                           double half_life_s, cascade_arena *arena,
                           struct cascade_recall_hits *out);

#endif
