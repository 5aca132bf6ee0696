/* Fuzz targets: each takes raw bytes, decodes them the way the service or the
 * store does (protobuf-c unpack into a request arena, or a nanopb record
 * decode), then runs the same validation and, where that needs no Redis, the
 * same work. The libFuzzer entry points (fuzz_main.c) and the regression test
 * (test_fuzz_regress.c) both call these, so a saved crashing input replays
 * through the exact path that crashed. */
#ifndef CASCADE_FUZZ_TARGETS_H
#define CASCADE_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

/* What a target made of its input. */
enum cascade_fuzz_verdict {
    CASCADE_FUZZ_PASSED = 0,      /* decoded and accepted by validation */
    CASCADE_FUZZ_UNDECODABLE = 1, /* not a valid message / record */
    CASCADE_FUZZ_REJECTED = 2,    /* decoded, refused by validation (EINVAL / ETOOBIG) */
};

struct cascade_fuzz_target {
    const char *name; /* "recall_request", "item_record", ... */
    /* Run one input; returns a cascade_fuzz_verdict. Aborts (so the fuzzer
     * reports it) only when an invariant between two decoders fails. */
    int (*run)(const uint8_t *data, size_t size);
};

/* Every target; *n is set to the count. Static storage. */
const struct cascade_fuzz_target *cascade_fuzz_targets(size_t *n);

/* The target called name, or NULL. */
const struct cascade_fuzz_target *cascade_fuzz_target_find(const char *name);

/* Create the shared stage objects the request targets run against (a Redis
 * pool pointing at a loopback port that is bound but never listens, so every
 * Redis command fails fast with UNAVAILABLE). Idempotent; not thread-safe:
 * call once before the first input. Returns 0 or a negative code with a
 * message on stderr. */
int cascade_fuzz_init(void);

/* Free what cascade_fuzz_init created. */
void cascade_fuzz_shutdown(void);

#endif
