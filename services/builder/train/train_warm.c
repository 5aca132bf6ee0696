/* The trainers' warm start (train_warm.h): resolving the current version and
 * reporting are here; what "fits" and how to copy is the trainer's apply. */
#include "train_warm.h"

#include <stdio.h>

#include "error.h"
#include "latest_file.h"

int cascade_train_warm_start(const char *job, const char *dir, const char *latest, bool quiet,
                             cascade_train_warm_apply apply, void *ctx, char *from, size_t fromlen)
{
    char name[256], path[4400], err[512] = "", detail[256] = "";
    from[0] = '\0';
    if (!dir || cascade_latest_current(dir, latest, name, sizeof name, path, sizeof path, err,
                                       sizeof err) != 0)
        return 0; /* nothing published yet */
    int rc = apply(ctx, dir, name, path, detail, sizeof detail, err, sizeof err);
    if (rc == CASCADE_ENOMEM)
        return rc;
    if (rc != 0) {
        if (!quiet)
            fprintf(stderr, "%s: not warm-starting from %s: %s\n", job, name, err);
        return 0;
    }
    snprintf(from, fromlen, "%s", name);
    if (!quiet)
        fprintf(stderr, "%s: warm start from %s%s%s%s\n", job, name, detail[0] ? " (" : "", detail,
                detail[0] ? ")" : "");
    return 0;
}
