/* cascade-sim: the closed-loop simulator (services/sim/sim.h). Thin wrapper. */
#include <stdio.h>

#include "error.h"
#include "rpc.h"
#include "sim.h"

int main(int argc, char **argv)
{
    struct cascade_sim_opts o;
    struct cascade_sim_summary sum;
    char err[1024];
    cascade_sim_defaults(&o);
    int rc = cascade_sim_parse(argc, argv, &o, stdout, stderr);
    if (rc != 0)
        return rc < 0 ? CASCADE_SIM_OK : rc;
    cascade_rpc_init();
    rc = cascade_sim_run(&o, &sum, err, sizeof(err));
    cascade_rpc_shutdown();
    /* What was done, also before a failure; nothing when nothing ran. */
    if (rc == 0 || sum.requests + sum.failed > 0)
        cascade_sim_print(&sum, stdout);
    if (rc != 0) {
        fprintf(stderr, "cascade-sim: %s\n", err);
        return rc == CASCADE_EINVAL ? CASCADE_SIM_USAGE : CASCADE_SIM_FAILED;
    }
    return CASCADE_SIM_OK;
}
