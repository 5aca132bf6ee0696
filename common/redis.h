/* Redis access over hiredis: one connection per thread (a cascade_redis is NOT
 * thread-safe; use cascade_redis_pool to give each thread its own), connect and
 * command timeouts, automatic reconnect on the next command after an I/O error,
 * and pipelining. Errors name the server: "redis 127.0.0.1:6379: connection refused". */
#ifndef CASCADE_REDIS_H
#define CASCADE_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>

typedef struct cascade_redis cascade_redis;
typedef struct cascade_redis_pool cascade_redis_pool;

struct cascade_redis_opts {
    const char *host;       /* default "127.0.0.1"; a path starting with '/' is a
                             * Unix socket (port ignored), see parse_addr */
    int port;               /* default 6379 */
    int connect_timeout_ms; /* default 200 */
    int command_timeout_ms; /* default 500 */
    /* AUTH sent after every (re)connect when password is set: "AUTH user
     * password" with an ACL user, "AUTH password" without. Both borrowed:
     * the handle and the pool keep their own copies. NULL/"" = no AUTH. */
    const char *user;
    const char *password;
};

/* Redis credentials read from a file or the environment, so the secret need
 * not appear in argv. Sizes bound what is accepted. */
struct cascade_redis_auth {
    char user[128];
    char password[512];
};

/* Fill auth for offline tools (cascade-build, cascade-eval, cascade-ltr)
 * from the environment: CASCADE_REDIS_PASSWORD, else the first line of the
 * file CASCADE_REDIS_PASSWORD_FILE; user from CASCADE_REDIS_USER. Unset
 * variables leave the fields "". Returns 0, or CASCADE_EINVAL with a message
 * in err (unreadable file, value too long). */
int cascade_redis_auth_from_env(struct cascade_redis_auth *auth, char *err, size_t errlen);

/* What an offline tool's connection options point into: the parsed host and
 * the credentials. Wipe it (cascade_redis_tool_wipe) once the handles or pools
 * are created: they keep their own copies. */
struct cascade_redis_tool_conn {
    char host[256];
    struct cascade_redis_auth auth;
};

/* Options for an offline tool's connection to addr ("host:port"): connect
 * timeout 2 s, the given command timeout, credentials from the environment
 * (cascade_redis_auth_from_env). The strings in *out point into *buf.
 * Returns 0, or CASCADE_EINVAL with "--redis: expected HOST:PORT, got 'x'"
 * or the credential problem in err. */
int cascade_redis_tool_opts(const char *addr, int command_timeout_ms,
                            struct cascade_redis_tool_conn *buf, struct cascade_redis_opts *out,
                            char *err, size_t errlen);
void cascade_redis_tool_wipe(struct cascade_redis_tool_conn *buf);

/* Read a secret from the first line of `path` (trailing CR/LF removed) into
 * dst. Returns 0, or CASCADE_EINVAL with "<what> <path>: <reason>" in err
 * (cannot open, empty, longer than len - 1). Thread-safe. */
int cascade_redis_read_secret_file(const char *path, const char *what, char *dst, size_t len,
                                   char *err, size_t errlen);

/* Parse "host:port", ":port" (host 127.0.0.1), "host" (port 6379),
 * "[v6addr]:port" or "unix:/absolute/path" (a Unix socket: the path goes to
 * hostbuf, *port is 0): the host is copied into the caller's hostbuf (hostlen
 * bytes, NUL-terminated) and the port stored in *port. Returns 0, or
 * CASCADE_EINVAL (NULL argument, port not in 1..65535, host longer than
 * hostlen - 1, unclosed '[', a socket path that is not absolute or longer
 * than a Unix socket address holds); *port is only written on success. No
 * message: callers say what was wrong ("--redis: expected HOST:PORT or
 * unix:/PATH, got 'x'"). */
int cascade_redis_parse_addr(const char *addr, char *hostbuf, size_t hostlen, int *port);

/* True when a parsed host (cascade_redis_parse_addr) names a Unix socket. */
bool cascade_redis_host_is_unix(const char *host);

/* Create a connection handle; connects lazily on first use. Never NULL unless
 * out of memory. Free with cascade_redis_destroy (NULL-safe). */
cascade_redis *cascade_redis_create(const struct cascade_redis_opts *opts);
void cascade_redis_destroy(cascade_redis *r);

/* Bound every later command on this handle by an absolute deadline on the
 * monotonic clock (cascade_now_ms; INT64_MAX = none): connecting and each
 * command wait at most min(configured timeout, time left). Once the deadline
 * has passed, commands fail CASCADE_ETIMEDOUT without being sent (a pipeline
 * whose replies are still due is dropped with the connection). A command cut
 * short by the deadline is a timeout like any other: CASCADE_EUNAVAILABLE, the
 * connection dropped, and the message ends "(the request deadline)". Request paths call this right
 * after cascade_redis_pool_get with the call's deadline. NULL-safe. */
void cascade_redis_set_deadline(cascade_redis *r, int64_t deadline_ms);

/* Run one command (printf-style, hiredis formatting: %s %b %d %lld ...; hiredis
 * rejects %zu, so cast sizes to unsigned long long and use %llu). On success
 * returns 0 and *reply (caller frees with freeReplyObject). On failure *reply
 * is NULL and cascade_redis_error says why: a Redis error reply (type
 * REDIS_REPLY_ERROR) returns CASCADE_EIO with the message; connection
 * problems return CASCADE_EUNAVAILABLE and drop the connection so the next
 * call reconnects; a deadline already passed returns CASCADE_ETIMEDOUT (see
 * cascade_redis_set_deadline); a command issued while pipelined replies are
 * still unread returns CASCADE_EINVAL. */
int cascade_redis_command(cascade_redis *r, redisReply **reply, const char *fmt, ...);

/* Same with an argv vector (binary-safe; argv and argvlen are borrowed for
 * the call). Same returns. */
int cascade_redis_command_argv(cascade_redis *r, redisReply **reply, int argc, const char **argv,
                               const size_t *argvlen);

/* Pipelining: queue commands (append connects when needed), then read every
 * reply in order with get_reply before the next cascade_redis_command. append
 * returns 0, or a negative code: CASCADE_EUNAVAILABLE (cannot connect) or
 * CASCADE_ETIMEDOUT (deadline passed) before anything is queued; CASCADE_ENOMEM
 * or CASCADE_EINVAL (a command hiredis cannot format) drop the connection and
 * everything queued on it, so a half-built MULTI is never sent. get_reply
 * returns what cascade_redis_command returns for one reply (0 and *reply for
 * the caller to free, else *reply NULL); once the connection dropped
 * mid-pipeline every further get_reply fails CASCADE_EUNAVAILABLE, and it
 * fails CASCADE_EINVAL when nothing was queued. */
int cascade_redis_append(cascade_redis *r, const char *fmt, ...);
int cascade_redis_append_argv(cascade_redis *r, int argc, const char **argv, const size_t *argvlen);
int cascade_redis_get_reply(cascade_redis *r, redisReply **reply);
/* Round trips made on r since it was created: each cascade_redis_command*
 * and each cascade_redis_get_reply that had to send queued commands first
 * (the first reply read after appends). Tests count a code path's trips. */
uint64_t cascade_redis_round_trips(const cascade_redis *r);

/* Drop the handle's connection now (the next command reconnects), e.g. to
 * leave SUBSCRIBE mode. NULL-safe. */
void cascade_redis_disconnect(cascade_redis *r);

/* Wait up to timeout_ms for a message the server sends unasked, as on a
 * connection that issued SUBSCRIBE, and return it in *reply (the caller frees
 * it with freeReplyObject). Returns 0; CASCADE_ETIMEDOUT when no whole
 * message came in time (the connection stays, nothing is lost: a partial
 * message is completed by the next call); CASCADE_EUNAVAILABLE when the
 * connection is lost or was never opened (dropped, cascade_redis_error says
 * why); CASCADE_EIO for an error reply. Ignores the handle's deadline. */
int cascade_redis_read_message(cascade_redis *r, redisReply **reply, int timeout_ms);

/* Message of the last failure on this handle ("" when none). Borrowed. */
const char *cascade_redis_error(const cascade_redis *r);

/* "host:port" of this handle. Borrowed. */
const char *cascade_redis_addr(const cascade_redis *r);

/* Internal (for store.c): replace the handle's error message with
 * "redis host:port: <formatted text>", e.g. for a record that fails to decode. */
void cascade_redis__set_error(cascade_redis *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Internal (for tests): the RESP text of a command, as hiredis's
 * redisFormatCommandArgv writes it ("*<argc>\r\n" then "$<len>\r\n<arg>\r\n"
 * per argument; argvlen NULL: strlen of each), into buf, which holds
 * format_argv_len(argc, argv, argvlen) bytes. Returns the length written
 * (format_argv_len's). */
size_t cascade_redis__format_argv_len(int argc, const char **argv, const size_t *argvlen);
size_t cascade_redis__format_argv(char *buf, int argc, const char **argv, const size_t *argvlen);

/* Internal: put back a message cascade_redis_error gave earlier (the
 * caller's copy), e.g. a pipeline's first failure after later replies
 * succeeded and cleared it. */
void cascade_redis__restore_error(cascade_redis *r, const char *saved);

/* A pool hands each calling thread its own connection (created on first use,
 * freed with the pool). Thread-safe. cascade_redis_pool_get clears the
 * handle's deadline (see cascade_redis_set_deadline), so one request's deadline
 * never leaks into the next one served by the same thread. */
cascade_redis_pool *cascade_redis_pool_create(const struct cascade_redis_opts *opts);
void cascade_redis_pool_destroy(cascade_redis_pool *p);
cascade_redis *cascade_redis_pool_get(cascade_redis_pool *p);

/* The options the pool's handles are made with (host and credentials are the
 * pool's copies), e.g. for a connection of one's own beside the pool's.
 * Borrowed: valid until the pool is destroyed. */
const struct cascade_redis_opts *cascade_redis_pool_opts(const cascade_redis_pool *p);

#endif
