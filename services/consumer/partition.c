/* Daily partitions: length-checked, fsynced appends (partition.h). */
#include "partition.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

void cascade_partition_date(int64_t ts_s, char out[11])
{
    time_t t = (time_t)ts_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        snprintf(out, 11, "1970-01-01");
}

static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, errlen, "partition %s: %s", path, strerror(errno));
    return CASCADE_EIO;
}

int cascade_partition_append(const char *dir, const char *sub_name, const char *date,
                             int64_t committed, const char *text, size_t len, int64_t *new_len,
                             char *err, size_t errlen)
{
    char sub[1024], path[1100];
    struct stat st;
    FILE *f = NULL;
    int fd = -1, rc;
    if (snprintf(sub, sizeof sub, "%s/%s", dir, sub_name) >= (int)sizeof sub) {
        snprintf(err, errlen, "partition %s: directory name too long", dir);
        return CASCADE_EINVAL;
    }
    snprintf(path, sizeof path, "%s/%s.tsv", sub, date);
    if ((rc = make_dir(dir, err, errlen)) || (rc = make_dir(sub, err, errlen)))
        return rc;
    rc = CASCADE_EIO;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 || fstat(fd, &st) != 0)
        goto out;
    off_t end = st.st_size;
    if (committed >= 0 && (off_t)committed < end) {
        /* A batch written but never committed (the consumer died between
         * the write and the script): it is delivered again, so drop it. */
        if (ftruncate(fd, (off_t)committed) != 0)
            goto out;
        end = (off_t)committed;
    }
    if (lseek(fd, end, SEEK_SET) < 0 || (f = fdopen(fd, "w")) == NULL)
        goto out;
    fd = -1; /* f owns it now */
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto out;
    *new_len = (int64_t)end + (int64_t)len;
    rc = 0;
out:
    if (rc)
        snprintf(err, errlen, "partition %s: %s", path, strerror(errno));
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    return rc;
}

int cascade_partition_length(const char *dir, const char *sub, const char *date, int64_t *len,
                             char *err, size_t errlen)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/%s.tsv", dir, sub, date);
    *len = 0;
    if (stat(path, &st) == 0) {
        *len = (int64_t)st.st_size;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    snprintf(err, errlen, "partition %s: %s", path, strerror(errno));
    return CASCADE_EIO;
}
