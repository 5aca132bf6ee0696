/* cascade-build: Cascade's offline jobs (load, the recall indexes, the
 * trainers, all, import-movielens; the list is in build_cli.c's usage).
 * Everything is in build_cli.c and the job modules; the learned rankers' job
 * (train ltr) lives in services/ltr, which builds on the evaluation and
 * recall libraries, so it is dispatched here. */
#include <string.h>

#include "build_cli.h"
#include "ltr_train.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train-ltr") == 0) {
        argv[1] = argv[0];
        return cascade_ltr_main(argc - 1, argv + 1);
    }
    if (argc >= 3 && strcmp(argv[1], "train") == 0 && strcmp(argv[2], "ltr") == 0) {
        argv[2] = argv[0];
        return cascade_ltr_main(argc - 2, argv + 2);
    }
    return cascade_build_main(argc, argv);
}
