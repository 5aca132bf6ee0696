/* The cascade-eval command line: read a data set, split it per user by time,
 * build every recall family on the train part into a private Redis
 * namespace, evaluate each channel and the merged recall on the held-out
 * part, print the table (and --json). Lives in the library so tests can run
 * it in-process; main.c only calls it. */
#ifndef CASCADE_EVAL_CLI_H
#define CASCADE_EVAL_CLI_H

/* Exit codes: 0 success, 1 failure (data, Redis, ...), 2 bad flags. */
#define CASCADE_EVAL_EXIT_OK 0
#define CASCADE_EVAL_EXIT_FAILURE 1
#define CASCADE_EVAL_EXIT_USAGE 2

/* Run "cascade-eval [flags]" (argv[0] is the program name). Progress and
 * errors go to stderr, the table to stdout. Returns an exit code. */
int cascade_eval_main(int argc, char **argv);

#endif
