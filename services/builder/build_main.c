/* cascade-build: Cascade's offline jobs (load, itemcf, train-rank, all,
 * import-movielens). Everything is in build_cli.c and the job modules. */
#include "build_cli.h"

int main(int argc, char **argv)
{
    return cascade_build_main(argc, argv);
}
