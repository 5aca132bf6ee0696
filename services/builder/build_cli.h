/* The cascade-build command line: subcommands load, itemcf, swing, usercf,
 * ease, lists, authors, train-rank, train-mmoe, train-prerank,
 * train-two-tower, train MODEL, all and import-movielens, their flags and
 * their reports. Lives in the library so tests can run a subcommand
 * in-process; build_main.c only calls it (and dispatches train ltr to
 * services/ltr). */
#ifndef CASCADE_BUILDER_BUILD_CLI_H
#define CASCADE_BUILDER_BUILD_CLI_H

#include <stddef.h>

#include "redis.h"

/* Exit codes. */
#define CASCADE_BUILD_EXIT_OK 0
#define CASCADE_BUILD_EXIT_FAILURE 1
#define CASCADE_BUILD_EXIT_USAGE 2
/* A trainer: the data does not support this model (constant labels, too few
 * examples, a held-out metric no better than the gate's floor). Nothing was
 * published; scripts may carry on without the model. */
#define CASCADE_BUILD_EXIT_DATA 3
/* A trainer: the new model is worse than the published one on the same
 * held-out data; it was saved but not published (train_gate.h). */
#define CASCADE_BUILD_EXIT_REFUSED 4

/* Run "cascade-build <subcommand> [flags]" (argv[0] is the program name).
 * Prints progress to stderr, summaries to stdout, errors to stderr, and
 * returns an exit code. */
int cascade_build_main(int argc, char **argv);

/* Connect to the --redis HOST:PORT of a builder command and PING, so a wrong
 * address fails before any work is done. NULL with err on failure; the
 * caller destroys the connection. */
cascade_redis *cascade_build_redis_connect(const char *addr, char *err, size_t errlen);

#endif
