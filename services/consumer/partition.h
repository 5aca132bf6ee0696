/* Daily event partitions: DATA_DIR/events/YYYY-MM-DD.tsv in the events.tsv
 * format (docs/data.md), appended by the stream consumer (and, for the
 * client-reported impressions, DATA_DIR/client-impressions/YYYY-MM-DD.tsv). A crash never
 * leaves a partial line behind: an append first cuts the file back to the
 * length last committed (the consumer keeps it in Redis, set in the same
 * script as the counters), so a batch written but not committed is written
 * again, once, when it is redelivered. One writer per directory. Stateless
 * functions; thread-safe for different files. */
#ifndef CASCADE_CONSUMER_PARTITION_H
#define CASCADE_CONSUMER_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DD" (UTC) of Unix time ts_s into out (11 bytes). */
void cascade_partition_date(int64_t ts_s, char out[11]);

/* Append text[0..len) to dir/<sub>/<date>.tsv (sub: "events" or
 * "client-impressions"; directories created as needed): the file is first truncated to `committed`
 * bytes when longer (an uncommitted tail), or, with committed < 0 (no record), taken as it is; then
 * the text is written and fsynced. *new_len gets the file's length after the append (what to
 * commit). Returns 0 or a negative code with "partition <path>: <reason>" in err. */
int cascade_partition_append(const char *dir, const char *sub, const char *date, int64_t committed,
                             const char *text, size_t len, int64_t *new_len, char *err,
                             size_t errlen);

/* The current length of dir/<sub>/<date>.tsv into *len (0 when the file
 * does not exist). Returns 0 or CASCADE_EIO with "partition <path>:
 * <reason>" in err. */
int cascade_partition_length(const char *dir, const char *sub, const char *date, int64_t *len,
                             char *err, size_t errlen);

#endif
