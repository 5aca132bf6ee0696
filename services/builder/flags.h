/* Command-line flags for the builder's tools: a table of --name value flags
 * (also --name=value), typed, range-checked, with a generated --help text
 * that shows each flag's default. */
#ifndef CASCADE_BUILDER_FLAGS_H
#define CASCADE_BUILDER_FLAGS_H

#include <stddef.h>
#include <stdio.h>

enum cascade_flag_kind {
    CASCADE_FLAG_STRING, /* const char ** (points into argv) */
    CASCADE_FLAG_SIZE,   /* size_t * */
    CASCADE_FLAG_U64,    /* uint64_t * */
    CASCADE_FLAG_I64,    /* int64_t * */
    CASCADE_FLAG_INT,    /* int * */
    CASCADE_FLAG_DOUBLE, /* double * */
    CASCADE_FLAG_BOOL,   /* bool *, takes no value */
};

struct cascade_flag {
    const char *name; /* without the dashes */
    enum cascade_flag_kind kind;
    void *dst; /* holds the default on entry */
    const char *help;
    double min, max; /* inclusive range for numbers; min == max == 0: no check */
};

#define CASCADE_FLAGS_HELP 1

/* Parse argv[first..argc). Returns 0, CASCADE_FLAGS_HELP when --help/-h was
 * given, or CASCADE_EINVAL with "--users: expected an integer, got 'x'" in err. */
int cascade_flags_parse(int argc, char **argv, int first, const struct cascade_flag *flags,
                        size_t n, char *err, size_t errlen);

/* Print "usage: <usage>", a description, and one line per flag with its default. */
void cascade_flags_usage(FILE *out, const char *usage, const char *description,
                         const struct cascade_flag *flags, size_t n);

#endif
