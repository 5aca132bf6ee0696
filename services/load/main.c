/* cascade-load: ghz-compatible load generator for Cascade's gRPC services
 * (docs/load.md). Thin wrapper over the load library. */
#include <stdio.h>

#include "load.h"
#include "rpc.h"

int main(int argc, char **argv)
{
    struct cascade_load_opts o;
    int rc = cascade_load_parse(argc, argv, &o, stdout, stderr);
    if (rc != 0)
        return rc < 0 ? CASCADE_LOAD_OK : rc;
    FILE *out = stdout;
    if (o.output && !(out = fopen(o.output, "w"))) {
        fprintf(stderr, "cascade-load: -o %s: cannot write it\n", o.output);
        return CASCADE_LOAD_FAILED;
    }
    cascade_rpc_init();
    struct cascade_load_report *report = NULL;
    char err[700];
    rc = cascade_load_run(&o, &report, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "cascade-load: %s\n", err);
        rc = CASCADE_LOAD_FAILED;
    } else {
        rc = (o.format == CASCADE_LOAD_JSON ? cascade_load_write_json(report, out)
                                            : cascade_load_write_summary(report, out)) == 0
                 ? CASCADE_LOAD_OK
                 : CASCADE_LOAD_FAILED;
    }
    cascade_load_report_destroy(report);
    cascade_rpc_shutdown();
    if (out != stdout && fclose(out) != 0)
        rc = CASCADE_LOAD_FAILED;
    return rc;
}
