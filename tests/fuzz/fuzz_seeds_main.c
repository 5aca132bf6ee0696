/* cascade-fuzz-seeds DIR: write the seed corpus (DIR/<target>/seed-<n>). */
#include <stdio.h>
#include <string.h>

#include "fuzz_seeds.h"

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s DIR\nwrite the fuzz seed corpus to DIR/<target>/seed-<n>\n", argv[0]);
        return 0;
    }
    /* An option-looking argument is a mistake, not a directory to create
     * (a run with --help once wrote a "--help/" corpus into the tree). */
    if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    return cascade_fuzz_seeds_write(argv[1]) == 0 ? 0 : 1;
}
