/* Unit tests for the trainers' per-epoch progress line (train_progress.h):
 * every field is there and examples/s and the ETA follow from the totals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "train_progress.h"

static void render(const struct cascade_train_epoch *e, char *buf, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    cascade_train_epoch_print(f, e);
    rewind(f);
    assert_non_null(fgets(buf, (int)len, f));
    fclose(f);
}

static void test_line_has_every_field(void **state)
{
    (void)state;
    char line[256];
    /* Epoch 2 of 5 after 4 s for 2 × 1000 examples: 500 examples/s, and three
     * more epochs at 2 s each. */
    struct cascade_train_epoch e = {.job = "train-x",
                                    .epoch = 2,
                                    .epochs = 5,
                                    .step = 64,
                                    .loss = 0.25,
                                    .metrics = "held-out AUC 0.7000",
                                    .examples = 2000,
                                    .elapsed_s = 4.0};
    render(&e, line, sizeof(line));
    assert_string_equal(line, "train-x: epoch 2/5 step 64 loss 0.2500 held-out AUC 0.7000; 500 "
                              "examples/s, ETA 6 s\n");
    e.metrics = NULL;
    e.epoch = 5;
    e.elapsed_s = 0;
    render(&e, line, sizeof(line));
    assert_string_equal(line, "train-x: epoch 5/5 step 64 loss 0.2500; 0 examples/s, ETA 0 s\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
