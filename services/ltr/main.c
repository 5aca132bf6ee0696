/* cascade-ltr: the learned rankers' training job (ltr_train.h); the same
 * as cascade-build train ltr. */
#include "ltr_train.h"

int main(int argc, char **argv)
{
    return cascade_ltr_main(argc, argv);
}
