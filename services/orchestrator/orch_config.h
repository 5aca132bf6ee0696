/* The orchestrator's configuration: which recall channels to call (with
 * weight, quota and timeout) for established and for cold-start users, where
 * the stages live, per-stage time budgets, new-item exploration, the recall
 * cache, the hard-negative log, the merge/fallback/feedback limits and who
 * may have the debug trace. Parsed once at start from the
 * "orchestrator" section of the config; every key is documented with its
 * default in docs/orchestrator.md. */
#ifndef CASCADE_ORCH_CONFIG_H
#define CASCADE_ORCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "slots.h"

#define CASCADE_ORCH_NAME_MAX 64
#define CASCADE_ORCH_ADDR_MAX 256
#define CASCADE_ORCH_MAX_CHANNELS 32
#define CASCADE_ORCH_TOKEN_MAX 257 /* debug.token: at most 256 bytes */

/* One recall channel: a Recall RPC naming `name`, sent to `endpoint`. */
struct cascade_orch_channel_cfg {
    char name[CASCADE_ORCH_NAME_MAX];
    char endpoint[CASCADE_ORCH_ADDR_MAX]; /* resolved "host:port" */
    double weight;                        /* merge weight, >= 0 */
    uint32_t quota;                       /* max candidates kept from this channel */
    int timeout_ms;                       /* per-call budget */
};

/* One entry of orchestrator.slots: an exploration slot (item_id 0, source
 * "exploration") or an item pinned at a position for every request whose
 * list reaches it (item_id, source as the request's slots). */
struct cascade_orch_slot_cfg {
    uint32_t position; /* 0-based */
    uint64_t item_id;  /* 0 = exploration slot */
    char source[CASCADE_ORCH_NAME_MAX + 1];
};

#define CASCADE_ORCH_MAX_TRACKS 4
#define CASCADE_ORCH_TRACK_MAX 32 /* track name, with its NUL */

/* One track of a stage's endpoint group (sticky canary): a user whose
 * hash(user ‖ track_salt) falls in this track's weight share goes here. */
struct cascade_orch_track_cfg {
    char name[CASCADE_ORCH_TRACK_MAX];    /* "stable", "canary": [a-z0-9_]+ */
    char endpoint[CASCADE_ORCH_ADDR_MAX]; /* resolved "host:port" */
    double weight;                        /* > 0; shares are weight / sum of weights */
};

/* One downstream stage (filter, prerank, rank, rerank). */
struct cascade_orch_stage_cfg {
    bool enabled;                         /* false: skipped, not degraded */
    char endpoint[CASCADE_ORCH_ADDR_MAX]; /* resolved "host:port" (the first track's with tracks) */
    int timeout_ms;                       /* per-call budget */
    uint32_t keep;                        /* prerank/rank: candidates kept (0 = stage default) */
    int min_ms;     /* least time worth giving the stage: the later stages' reserve */
    int reserve_ms; /* derived: Σ min_ms of the enabled stages after this one, kept back
                       from the request's deadline (cascade_orch_stage_deadline) */
    /* An endpoint group: "endpoint" given as a list of {track, endpoint,
     * weight}. n_tracks 0 = one endpoint, no tracks. */
    struct cascade_orch_track_cfg tracks[CASCADE_ORCH_MAX_TRACKS];
    size_t n_tracks;
    char track_salt[CASCADE_ORCH_NAME_MAX]; /* default "<stage>-track" */
};

/* Absolute deadline of one stage call made at now_ms: its own budget
 * (now + timeout_ms), but never past request_deadline_ms - reserve_ms, the
 * time the later stages need; a stage still gets min_ms when less than that
 * is left, within the request's deadline. Pure; thread-safe. */
int64_t cascade_orch_stage_deadline(int64_t now_ms, int64_t request_deadline_ms, int timeout_ms,
                                    int min_ms, int reserve_ms);

/* The track index of user_id in st's group (0 when it has none): bucket =
 * hash(user_id ‖ track_salt) mod 10000, the first track whose cumulative
 * weight share exceeds bucket / 10000. Deterministic and thread-safe. */
size_t cascade_orch_config_track(const struct cascade_orch_stage_cfg *st, const char *user_id);

struct cascade_orch_config {
    struct cascade_orch_channel_cfg channels[CASCADE_ORCH_MAX_CHANNELS];
    size_t n_channels;
    /* Cold start: users with fewer than cold_min_interactions interactions
     * (UserRecord.interactions; no record counts as 0) get cold_channels
     * instead of channels. No cold channels = cold start off. */
    struct cascade_orch_channel_cfg cold_channels[CASCADE_ORCH_MAX_CHANNELS];
    size_t n_cold_channels;
    uint32_t cold_min_interactions;
    /* New-item exploration (explore.h): share of the final list reserved for
     * items of explore_channel (0 = off), where the first slot goes (share of
     * the list), how far down the ranker's order a pick may be (share of what
     * it scored), and how many of the channel's filtered candidates the
     * ranker scores for the pick. Share, position and max_rank_share are
     * defaults an experiment may override (exploration.*). */
    double explore_share;
    double explore_position;
    double explore_max_rank_share;
    uint32_t explore_candidates;
    char explore_channel[CASCADE_ORCH_NAME_MAX];
    /* orchestrator.slots, in config order: pinned items and, when any are
     * listed, the exploration positions (instead of exploration.position's
     * formula). */
    struct cascade_orch_slot_cfg slots[CASCADE_SLOTS_MAX];
    size_t n_slots;
    /* Recall cache: ranked-but-unshown items kept per user (LIST). */
    bool cache_enabled;
    uint32_t cache_capacity;
    int64_t cache_ttl_s; /* 0 = no expiry */
    /* Hard negatives for two-tower training: items the rank stage scored but
     * cut (below rank.keep), at most hardneg_per_request per request, kept in
     * a LIST of hardneg_cap per user. */
    bool hardneg_enabled;
    uint32_t hardneg_per_request;
    uint32_t hardneg_cap;
    int64_t hardneg_ttl_s; /* 0 = no expiry */
    /* Serve log (serve_log.h): one {ns}:serves entry per answered Recommend,
     * the stream capped at about serve_log_max_len entries. */
    bool serve_log_enabled;
    uint32_t serve_log_max_len;
    /* New-item impression target (boost.h): exploration boosts an item until
     * it has boost_target served impressions, on the schedule
     * target·elapsed/boost_window_s; 0 = no target (every new item may be
     * picked, as before). */
    uint32_t boost_target;
    int64_t boost_window_s;
    /* With a target: a pool item at least this many impressions behind
     * schedule may take one exploration slot per request although the
     * ranker puts it below exploration.max_rank_share (boost.h,
     * cascade_boost_guarantee); 0 = off. */
    double boost_guarantee_deficit;
    /* PutItems (put_items.h): the list caps of the build (build.geo.cap,
     * build.city.cap, build.authors.items_cap), kept on online adds. */
    uint32_t put_geo_cap, put_city_cap, put_author_cap;
    struct cascade_orch_stage_cfg filter, prerank, rank, rerank;
    int deadline_ms;          /* request budget when the caller sent no deadline */
    uint32_t merge_max;       /* cap on the merged candidate list */
    int exposure_timeout_ms;  /* RecordExposure budget */
    int exposure_min_ms;      /* RecordExposure's share of the later stages' reserve */
    int recall_min_ms;        /* least time a recall channel gets */
    bool recall_batch;        /* one Recall call per endpoint (channel_specs), not per channel */
    bool compact_stage_calls; /* pre-rank/rank: recall_signals columns, scores-only answers */
    int recall_reserve_ms;    /* derived: kept back from the deadline for the stages */
    uint32_t fallback_max;    /* hot-list fallback size */
    uint32_t lastn_max;       /* Feedback: length of the user's last-n list */
    uint32_t events_maxlen;   /* Feedback: approximate cap of the event stream */
    int64_t feedback_dedupe_window_s; /* Feedback: how long an event id is remembered */
    uint32_t feedback_dedupe_max;     /* Feedback: event ids remembered per user */
    int feedback_timeout_ms;          /* Feedback: Redis must start the batch within this */
    size_t max_message_bytes;         /* client-side message limit for stage calls */
    /* Stage channels' reconnect settings (struct cascade_rpc_channel_opts). */
    int reconnect_initial_backoff_ms;
    int reconnect_max_backoff_ms;
    int connect_timeout_ms;
    /* Stage channels' TLS PEM files, config tls.ca_file,
     * tls.client_cert_file, tls.client_key_file (cascade-orchestrator's
     * --tls-ca, --tls-client-cert, --tls-client-key); "" = plaintext. */
    char tls_ca_file[512];
    char tls_cert_file[512];
    char tls_key_file[512];
    /* Who may have the debug trace (RecommendRequest.debug): nobody unless
     * debug_enabled; then callers on a loopback address when debug_loopback,
     * and callers whose x-debug-token metadata equals debug_token (when set). */
    bool debug_enabled;
    bool debug_loopback;
    char debug_token[CASCADE_ORCH_TOKEN_MAX]; /* "" = no token accepted */
};

/* Parse the "orchestrator" section of cfg into out (defaults for absent keys).
 * Endpoint strings are "host:port" or the name of an entry of
 * orchestrator.endpoints; a channel's endpoint is overridden by
 * orchestrator.endpoints.recall_<channel> when that entry exists. Returns 0,
 * or CASCADE_EINVAL with "orchestrator.channels[1].weight: expected ..." in err. */
int cascade_orch_config_parse(const cascade_config *cfg, struct cascade_orch_config *out, char *err,
                              size_t errlen);

/* The channel named `name`, or NULL. */
const struct cascade_orch_channel_cfg *
cascade_orch_config_channel(const struct cascade_orch_config *c, const char *name);

#endif
