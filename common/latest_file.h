/* The "<name>.latest" pointer files of model directories: a one-line file
 * naming the current model file (written atomically by the trainers), and
 * the stat identity a service keeps to notice that it changed. Shared by
 * the trainers and the services that hot-reload models (PreRank, Rank,
 * two-tower recall). */
#ifndef CASCADE_LATEST_FILE_H
#define CASCADE_LATEST_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Identity of a .latest file when last looked at. */
struct cascade_latest_stat {
    bool exists;
    struct timespec mtime;
    ino_t ino;
    off_t size;
};

/* Stat path into st (exists false when it cannot be stat'ed). */
void cascade_latest_stat_get(const char *path, struct cascade_latest_stat *st);

/* True when a and b describe the same file state. */
bool cascade_latest_stat_same(const struct cascade_latest_stat *a,
                              const struct cascade_latest_stat *b);

/* Read the model file name from the .latest file at path: one line, a plain
 * file name (no '/', not "." or ".."), surrounding whitespace ignored.
 * Returns 0, CASCADE_ENOTFOUND, CASCADE_EIO or CASCADE_EFORMAT with err. */
int cascade_latest_read(const char *path, char *name, size_t len, char *err, size_t errlen);

/* The current model of a model directory: reads dir/latest (e.g.
 * "rank-lr.latest") into name and sets path to dir/name. Returns as
 * cascade_latest_read (CASCADE_ENOTFOUND: nothing published yet). */
int cascade_latest_current(const char *dir, const char *latest, char *name, size_t namelen,
                           char *path, size_t pathlen, char *err, size_t errlen);

/* Write "name\n" to path atomically (path.tmp, fsync, rename). 0 or CASCADE_EIO with err. */
int cascade_latest_write(const char *path, const char *name, char *err, size_t errlen);

/* Name a new model version in dir: "<prefix>-<UTC time>", with -2, -3, ...
 * appended when dir/<version>.safetensors already exists (two builds in one
 * second must not overwrite each other). path receives that file's path. */
void cascade_latest_version_new(const char *dir, const char *prefix, char *version,
                                size_t versionlen, char *path, size_t pathlen);

#endif
