/* Command-line parser tests: run a tool's parse function on an argument list
 * with stdout discarded and stderr captured, so the test can check the line a
 * user would see. */
#include <stdio.h>
#include <stdlib.h>

#include "support.h"

int test_parse_argv(test_argv_fn fn, void *opts, const char *prog, char *err_text, size_t len,
                    va_list ap)
{
    char *argv[TEST_ARGV_MAX + 2];
    int argc = 0;
    argv[argc++] = (char *)prog;
    for (char *s; (s = va_arg(ap, char *)) != NULL && argc <= TEST_ARGV_MAX;)
        argv[argc++] = s;
    argv[argc] = NULL;
    char *buf = NULL;
    size_t size = 0;
    FILE *err = open_memstream(&buf, &size);
    FILE *out = fopen("/dev/null", "w");
    int rc = fn(argc, argv, opts, out, err);
    fclose(err);
    fclose(out);
    snprintf(err_text, len, "%s", buf ? buf : "");
    free(buf);
    return rc;
}
