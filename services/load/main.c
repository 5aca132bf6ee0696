/* cascade-load: ghz-compatible load generator for Cascade's gRPC services
 * (docs/load.md). Thin wrapper over the load library. */
#include <stdio.h>

#include "load.h"
#include "rpc.h"

/* Write the report to -o FILE (created only once the run succeeded, so a
 * failed run leaves no file behind) or stdout. */
static int write_report(const struct cascade_load_opts *o, const struct cascade_load_report *r)
{
    FILE *out = o->output ? fopen(o->output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "cascade-load: -o %s: cannot write it\n", o->output);
        return CASCADE_LOAD_FAILED;
    }
    int rc = o->format == CASCADE_LOAD_JSON ? cascade_load_write_json(r, out)
                                            : cascade_load_write_summary(r, out);
    if (out != stdout ? fclose(out) != 0 : fflush(out) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "cascade-load: cannot write the report to %s\n",
                o->output ? o->output : "stdout");
    return rc == 0 ? CASCADE_LOAD_OK : CASCADE_LOAD_FAILED;
}

int main(int argc, char **argv)
{
    struct cascade_load_opts o;
    int rc = cascade_load_parse(argc, argv, &o, stdout, stderr);
    if (rc != 0)
        return rc < 0 ? CASCADE_LOAD_OK : rc;
    cascade_rpc_init();
    struct cascade_load_report *report = NULL;
    char err[700];
    if (cascade_load_run(&o, &report, err, sizeof err) != 0) {
        fprintf(stderr, "cascade-load: %s\n", err);
        rc = CASCADE_LOAD_FAILED;
    } else {
        rc = write_report(&o, report);
    }
    cascade_load_report_destroy(report);
    cascade_rpc_shutdown();
    return rc;
}
