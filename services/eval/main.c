/* cascade-eval: offline recall quality on a per-user time split (docs/eval.md).
 * Thin wrapper around cascade_eval_main. */
#include "eval_cli.h"

int main(int argc, char **argv)
{
    return cascade_eval_main(argc, argv);
}
