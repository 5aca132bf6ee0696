/* .latest pointer files: stat identity, reading the named model file, and
 * the atomic write the trainers use. */
#include "latest_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

void cascade_latest_stat_get(const char *path, struct cascade_latest_stat *st)
{
    struct stat sb;
    memset(st, 0, sizeof *st);
    if (stat(path, &sb) != 0)
        return;
    st->exists = true;
    st->mtime = sb.st_mtim;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
}

bool cascade_latest_stat_same(const struct cascade_latest_stat *a,
                              const struct cascade_latest_stat *b)
{
    return a->exists == b->exists && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ino == b->ino && a->size == b->size;
}

int cascade_latest_read(const char *path, char *name, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? CASCADE_ENOTFOUND : CASCADE_EIO;
    }
    char line[512] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *s = line;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (!ok || n == 0 || n >= len || strchr(s, '/') || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0) {
        snprintf(err, errlen, "%s: expected one model file name (no directory), got \"%.64s\"",
                 path, s);
        return CASCADE_EFORMAT;
    }
    memcpy(name, s, n + 1);
    return 0;
}

int cascade_latest_current(const char *dir, const char *latest, char *name, size_t namelen,
                           char *path, size_t pathlen, char *err, size_t errlen)
{
    char pointer[4200];
    snprintf(pointer, sizeof pointer, "%s/%s", dir, latest);
    int rc = cascade_latest_read(pointer, name, namelen, err, errlen);
    if (rc == 0)
        snprintf(path, pathlen, "%s/%s", dir, name);
    return rc;
}

int cascade_latest_write(const char *path, const char *name, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return CASCADE_EIO;
    }
    fprintf(f, "%s\n", name);
    bool bad = ferror(f) != 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return CASCADE_EIO;
    }
    return 0;
}

void cascade_latest_version_new(const char *dir, const char *prefix, char *version,
                                size_t versionlen, char *path, size_t pathlen)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    struct stat st;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(version, versionlen, "%s-%s", prefix, stamp);
    snprintf(path, pathlen, "%s/%s.safetensors", dir, version);
    for (int n = 2; stat(path, &st) == 0 && n < 1000; n++) {
        snprintf(version, versionlen, "%s-%s-%d", prefix, stamp, n);
        snprintf(path, pathlen, "%s/%s.safetensors", dir, version);
    }
}
