/* cascade-cli: query the orchestrator (recommend, feedback) or any service's
 * health from the command line. Thin wrapper over the cli library. */
#include <stdio.h>

#include "cli.h"
#include "rpc.h"

int main(int argc, char **argv)
{
    struct cascade_cli_args args;
    int rc = cascade_cli_parse(argc, argv, &args, stdout, stderr);
    if (rc != 0)
        return rc < 0 ? CASCADE_CLI_OK : rc;
    cascade_rpc_init();
    rc = cascade_cli_run(&args, stdout, stderr);
    cascade_rpc_shutdown();
    return rc;
}
