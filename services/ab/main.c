/* cascade-ab: the experiment readout (services/ab/ab.h). Thin wrapper. */
#include <stdio.h>

#include "ab.h"

int main(int argc, char **argv)
{
    struct cascade_ab_args args;
    int rc = cascade_ab_parse(argc, argv, &args, stdout, stderr);
    if (rc != 0)
        return rc < 0 ? CASCADE_AB_OK : rc;
    return cascade_ab_run(&args, stdout, stderr);
}
