/* Internal layout of the stream consumer shared by its .c files (consumer.c:
 * groups, fetch, ack, metrics; consumer_apply.c: parsing, partitions, the
 * counter script). Not part of the library's API. */
#ifndef CASCADE_CONSUMER_INTERNAL_H
#define CASCADE_CONSUMER_INTERNAL_H

#include "arena.h"
#include "consumer.h"
#include "store.h"

enum { CASCADE_CONSUMER_EVENTS = 0, CASCADE_CONSUMER_SERVES = 1, CASCADE_CONSUMER_STREAMS = 2 };

/* One stream entry of the current batch, parsed (strings in the batch arena). */
struct cascade_consumer_entry {
    int stream;     /* CASCADE_CONSUMER_EVENTS or _SERVES */
    const char *id; /* the stream entry id, "ms-seq" */
    bool bad;       /* unparseable: skipped (counted), still acknowledged */
    const char *user;
    /* events */
    uint64_t item;
    uint32_t type;
    double value;
    int64_t ts_s;
    /* serves: the served items */
    uint64_t *items;
    size_t n_items;
};

struct cascade_consumer {
    char ns[64];
    char group[CASCADE_CONSUMER_NAME_MAX];
    char name[CASCADE_CONSUMER_NAME_MAX];
    char data_dir[512]; /* "" = no partitions */
    uint32_t batch;
    int64_t claim_idle_ms;
    double half_life_s;
    int64_t mark_ttl_s;
    uint32_t user_events_cap;
    int64_t user_events_ttl_s;
    char stream_key[CASCADE_CONSUMER_STREAMS][CASCADE_KEY_MAX];
    char claim_cursor[CASCADE_CONSUMER_STREAMS][48]; /* XAUTOCLAIM cursor per stream */
    cascade_arena *arena;                            /* the current batch */
    struct cascade_consumer_entry *entries;
    size_t n_entries;
    struct cascade_store_script apply_script;
    /* metrics (NULL without a registry) */
    cascade_metric *applied[CASCADE_CONSUMER_STREAMS];
    cascade_metric *duplicates[CASCADE_CONSUMER_STREAMS];
    cascade_metric *claimed[CASCADE_CONSUMER_STREAMS];
    cascade_metric *bad;
    cascade_metric *errors;
    cascade_metric *lag_entries[CASCADE_CONSUMER_STREAMS];
    cascade_metric *delay; /* histogram: seconds from XADD to applied */
    cascade_metric *partition_lines;
};

/* The stream name of an index ("events", "serves"). */
const char *cascade_consumer__stream_name(int stream);

#endif
