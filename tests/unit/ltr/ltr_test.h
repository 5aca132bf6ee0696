/* Shared by the learned rankers' tests: the repository's shipped config
 * (config/cascade.json), so the replay uses the served channel mix. Include
 * after <cmocka.h>. */
#ifndef CASCADE_TESTS_LTR_TEST_H
#define CASCADE_TESTS_LTR_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "config.h"

static inline cascade_config *ltr_test_config(void)
{
    char path[1024], err[512] = "";
    const char *src = getenv("CASCADE_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/config/cascade.json", src ? src : ".");
    cascade_config *cfg = cascade_config_load(path, err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    return cfg;
}

#endif
