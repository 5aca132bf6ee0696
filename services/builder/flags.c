/* Table-driven --flag parsing with typed values and range checks. */
#include "flags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const struct cascade_flag *find_flag(const struct cascade_flag *flags, size_t n,
                                            const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static bool in_range(const struct cascade_flag *f, double v)
{
    return (f->min == 0 && f->max == 0) || (v >= f->min && v <= f->max);
}

static int range_error(const struct cascade_flag *f, const char *value, char *err, size_t errlen)
{
    snprintf(err, errlen, "--%s: expected a value in [%g, %g], got '%s'", f->name, f->min, f->max,
             value);
    return CASCADE_EINVAL;
}

static int set_integer(const struct cascade_flag *f, const char *value, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    bool is_signed = f->kind == CASCADE_FLAG_I64 || f->kind == CASCADE_FLAG_INT;
    if (!is_signed && value[0] == '-')
        goto bad;
    long long sv = 0;
    unsigned long long uv = 0;
    if (is_signed)
        sv = strtoll(value, &end, 10);
    else
        uv = strtoull(value, &end, 10);
    if (errno || end == value || *end)
        goto bad;
    double v = is_signed ? (double)sv : (double)uv;
    if (!in_range(f, v))
        return range_error(f, value, err, errlen);
    switch (f->kind) {
    case CASCADE_FLAG_SIZE:
        *(size_t *)f->dst = (size_t)uv;
        break;
    case CASCADE_FLAG_U64:
        *(uint64_t *)f->dst = uv;
        break;
    case CASCADE_FLAG_I64:
        *(int64_t *)f->dst = sv;
        break;
    default:
        if (sv < INT32_MIN || sv > INT32_MAX)
            goto bad;
        *(int *)f->dst = (int)sv;
    }
    return 0;
bad:
    snprintf(err, errlen, "--%s: expected %s, got '%s'", f->name,
             is_signed ? "an integer" : "a non-negative integer", value);
    return CASCADE_EINVAL;
}

static int set_value(const struct cascade_flag *f, const char *value, char *err, size_t errlen)
{
    if (f->kind == CASCADE_FLAG_STRING) {
        *(const char **)f->dst = value;
        return 0;
    }
    if (f->kind == CASCADE_FLAG_DOUBLE) {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || v != v) {
            snprintf(err, errlen, "--%s: expected a number, got '%s'", f->name, value);
            return CASCADE_EINVAL;
        }
        if (!in_range(f, v))
            return range_error(f, value, err, errlen);
        *(double *)f->dst = v;
        return 0;
    }
    return set_integer(f, value, err, errlen);
}

int cascade_flags_parse(int argc, char **argv, int first, const struct cascade_flag *flags,
                        size_t n, char *err, size_t errlen)
{
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return CASCADE_FLAGS_HELP;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (flags start with --; see --help)",
                     arg);
            return CASCADE_EINVAL;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct cascade_flag *f = find_flag(flags, n, name, len);
        if (!f) {
            snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)len, name);
            return CASCADE_EINVAL;
        }
        if (f->kind == CASCADE_FLAG_BOOL) {
            if (eq) {
                snprintf(err, errlen, "--%s takes no value", f->name);
                return CASCADE_EINVAL;
            }
            *(bool *)f->dst = true;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", f->name);
                return CASCADE_EINVAL;
            }
            value = argv[++i];
        }
        int rc = set_value(f, value, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void print_default(FILE *out, const struct cascade_flag *f)
{
    switch (f->kind) {
    case CASCADE_FLAG_STRING: {
        const char *s = *(const char **)f->dst;
        if (s)
            fprintf(out, " (default %s)", s);
        break;
    }
    case CASCADE_FLAG_SIZE:
        fprintf(out, " (default %zu)", *(size_t *)f->dst);
        break;
    case CASCADE_FLAG_U64:
        fprintf(out, " (default %" PRIu64 ")", *(uint64_t *)f->dst);
        break;
    case CASCADE_FLAG_I64:
        fprintf(out, " (default %" PRId64 ")", *(int64_t *)f->dst);
        break;
    case CASCADE_FLAG_INT:
        fprintf(out, " (default %d)", *(int *)f->dst);
        break;
    case CASCADE_FLAG_DOUBLE:
        fprintf(out, " (default %g)", *(double *)f->dst);
        break;
    case CASCADE_FLAG_BOOL:
        break;
    }
}

void cascade_flags_usage(FILE *out, const char *usage, const char *description,
                         const struct cascade_flag *flags, size_t n)
{
    fprintf(out, "usage: %s\n", usage);
    if (description)
        fprintf(out, "\n%s\n", description);
    fprintf(out, "\nflags:\n");
    for (size_t i = 0; i < n; i++) {
        const struct cascade_flag *f = &flags[i];
        static const char *const metavar[] = {"S", "N", "N", "N", "N", "X", ""};
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", f->name, metavar[f->kind]);
        fprintf(out, "  %-30s %s", left, f->help);
        print_default(out, f);
        fputc('\n', out);
    }
    fprintf(out, "  %-30s %s\n", "--help", "show this text");
}
