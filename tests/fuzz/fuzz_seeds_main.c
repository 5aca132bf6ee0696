/* cascade-fuzz-seeds DIR: write the seed corpus (DIR/<target>/seed-<n>). */
#include <stdio.h>

#include "fuzz_seeds.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    return cascade_fuzz_seeds_write(argv[1]) == 0 ? 0 : 1;
}
