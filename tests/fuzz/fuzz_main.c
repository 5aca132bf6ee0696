/* libFuzzer entry point for one target, chosen at build time with
 * -DCASCADE_FUZZ_TARGET="name" (tests/fuzz/CMakeLists.txt builds one binary,
 * cascade-fuzz-<name>, per target). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_targets.h"

#ifndef CASCADE_FUZZ_TARGET
#error "build with -DCASCADE_FUZZ_TARGET=\"<target name>\""
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct cascade_fuzz_target *target;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    target = cascade_fuzz_target_find(CASCADE_FUZZ_TARGET);
    if (!target) {
        fprintf(stderr, "fuzz: no target named %s\n", CASCADE_FUZZ_TARGET);
        exit(2);
    }
    if (cascade_fuzz_init() != 0)
        exit(2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    target->run(data, size);
    return 0;
}
