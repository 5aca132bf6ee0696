/* Redis over hiredis: a lazily connected handle with connect and command
 * timeouts, reconnect on the next call after an I/O error, pipelining, and a
 * pool that gives each thread its own handle. Errors name the server. */
#include "redis.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "clock.h"
#include "decimal.h"
#include "error.h"

#define REDIS_DEFAULT_HOST "127.0.0.1"
#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_CONNECT_MS 200
#define REDIS_DEFAULT_COMMAND_MS 500
#define REDIS_ADDR_MAX 300   /* "host:port" as given, see addr below */
#define REDIS_REASON_MAX 400 /* the longest reason set_error is given */

struct cascade_redis {
    redisContext *ctx; /* NULL until connected, and again after an I/O error */
    char host[256];
    int port;
    int connect_timeout_ms;
    int command_timeout_ms;
    /* Absolute monotonic deadline of the request being served (INT64_MAX =
     * none): each command waits at most min(command_timeout_ms, time left). */
    int64_t deadline_ms;
    int armed_timeout_ms; /* the timeout last given to the socket, 0 = none yet */
    char *user;           /* NULL: AUTH without a user name */
    char *password;       /* NULL: no AUTH */
    int pending;          /* pipelined commands whose replies are not read yet */
    uint64_t
        round_trips; /* commands or pipelines sent and waited for (cascade_redis_round_trips) */
    char addr[REDIS_ADDR_MAX];
    /* "redis <addr>: <reason>" always fits: a longer message would lose the
     * reason, which is the part the user needs. */
    char err[sizeof("redis : ") + REDIS_ADDR_MAX + REDIS_REASON_MAX];
};

/* ---- address parsing ---- */

static int parse_port(const char *s, int *port)
{
    if (!*s)
        return CASCADE_EINVAL;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return CASCADE_EINVAL;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return CASCADE_EINVAL;
    }
    if (v < 1)
        return CASCADE_EINVAL;
    *port = (int)v;
    return 0;
}

bool cascade_redis_host_is_unix(const char *host)
{
    return host && host[0] == '/';
}

/* "unix:/path": the path must be absolute and fit a sockaddr_un. */
static int parse_unix_addr(const char *path, char *hostbuf, size_t hostlen, int *port)
{
    size_t len = strlen(path);
    if (path[0] != '/' || len >= sizeof(((struct sockaddr_un *)0)->sun_path) || len >= hostlen)
        return CASCADE_EINVAL;
    memcpy(hostbuf, path, len + 1);
    *port = 0;
    return 0;
}

int cascade_redis_parse_addr(const char *addr, char *hostbuf, size_t hostlen, int *port)
{
    if (!addr || !hostbuf || hostlen == 0)
        return CASCADE_EINVAL;
    if (strncmp(addr, "unix:", 5) == 0)
        return parse_unix_addr(addr + 5, hostbuf, hostlen, port);
    const char *host = addr, *colon;
    size_t host_len;
    if (addr[0] == '[') { /* [v6]:port */
        const char *close = strchr(addr, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return CASCADE_EINVAL;
        host = addr + 1;
        host_len = (size_t)(close - host);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(addr, ':');
        host_len = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    int p = REDIS_DEFAULT_PORT;
    if (colon && parse_port(colon + 1, &p) != 0)
        return CASCADE_EINVAL;
    if (host_len == 0) {
        host = REDIS_DEFAULT_HOST;
        host_len = strlen(host);
    }
    if (host_len >= hostlen)
        return CASCADE_EINVAL;
    memcpy(hostbuf, host, host_len);
    hostbuf[host_len] = '\0';
    *port = p;
    return 0;
}

/* ---- handle ---- */

cascade_redis *cascade_redis_create(const struct cascade_redis_opts *opts)
{
    cascade_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    const char *host = opts && opts->host && *opts->host ? opts->host : REDIS_DEFAULT_HOST;
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = cascade_redis_host_is_unix(r->host) ? 0
              : opts && opts->port > 0            ? opts->port
                                                  : REDIS_DEFAULT_PORT;
    r->connect_timeout_ms =
        opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : REDIS_DEFAULT_CONNECT_MS;
    r->command_timeout_ms =
        opts && opts->command_timeout_ms > 0 ? opts->command_timeout_ms : REDIS_DEFAULT_COMMAND_MS;
    r->deadline_ms = INT64_MAX;
    if (cascade_redis_host_is_unix(r->host))
        snprintf(r->addr, sizeof(r->addr), "unix:%s", r->host);
    else
        snprintf(r->addr, sizeof(r->addr), "%s:%d", r->host, r->port);
    if (opts && opts->password && opts->password[0]) {
        r->password = strdup(opts->password);
        if (opts->user && opts->user[0])
            r->user = strdup(opts->user);
        if (!r->password || (opts->user && opts->user[0] && !r->user)) {
            cascade_redis_destroy(r);
            return NULL;
        }
    }
    return r;
}

/* Overwrite and free a secret copy, so it does not linger in freed heap. */
static void secret_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

static void redis_disconnect(cascade_redis *r)
{
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
    r->pending = 0;
    r->armed_timeout_ms = 0;
}

void cascade_redis_destroy(cascade_redis *r)
{
    if (!r)
        return;
    redis_disconnect(r);
    secret_free(r->password);
    secret_free(r->user);
    free(r);
}

const char *cascade_redis_error(const cascade_redis *r)
{
    return r ? r->err : "";
}

const char *cascade_redis_addr(const cascade_redis *r)
{
    return r ? r->addr : "";
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* "Connection refused" -> "connection refused", to read well after "redis a:p: ". */
static void set_error(cascade_redis *r, const char *reason)
{
    snprintf(r->err, sizeof(r->err), "redis %s: %s", r->addr, reason);
    char *first = r->err + strlen("redis ") + strlen(r->addr) + 2;
    if (first < r->err + sizeof(r->err) && isupper((unsigned char)first[0]) &&
        islower((unsigned char)first[1]))
        first[0] = (char)tolower((unsigned char)first[0]);
}

void cascade_redis__set_error(cascade_redis *r, const char *fmt, ...)
{
    char reason[REDIS_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    set_error(r, reason);
}

void cascade_redis__restore_error(cascade_redis *r, const char *saved)
{
    snprintf(r->err, sizeof(r->err), "%s", saved);
}

void cascade_redis_set_deadline(cascade_redis *r, int64_t deadline_ms)
{
    if (r)
        r->deadline_ms = deadline_ms;
}

/* The time the next blocking step may take: the configured limit, cut to
 * what is left of the deadline. Returns 0 when the deadline has passed. */
static int redis_budget_ms(const cascade_redis *r, int configured_ms)
{
    int64_t left = cascade_ms_left(r->deadline_ms);
    if (left <= 0)
        return 0;
    return left < configured_ms ? (int)left : configured_ms;
}

/* Nothing was sent: the connection stays usable for the next request. */
static int redis_deadline_passed(cascade_redis *r)
{
    set_error(r, "request deadline passed before the command was sent");
    return CASCADE_ETIMEDOUT;
}

/* Authenticate a fresh connection (every reconnect comes through here). A
 * refused password is CASCADE_EUNAVAILABLE like any failure to connect, with
 * Redis's reason ("WRONGPASS invalid username-password pair ..."). */
static int redis_auth(cascade_redis *r, redisContext *ctx)
{
    if (!r->password)
        return 0;
    redisReply *rep = r->user ? redisCommand(ctx, "AUTH %s %s", r->user, r->password)
                              : redisCommand(ctx, "AUTH %s", r->password);
    int rc = 0;
    if (!rep) {
        cascade_redis__set_error(r, "AUTH failed: %s", ctx->errstr[0] ? ctx->errstr : "no reply");
        rc = CASCADE_EUNAVAILABLE;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        cascade_redis__set_error(r, "AUTH failed: %s (check redis.password / redis.user)",
                                 rep->str);
        rc = CASCADE_EUNAVAILABLE;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static int redis_connect(cascade_redis *r)
{
    if (r->ctx)
        return 0;
    int budget_ms = redis_budget_ms(r, r->connect_timeout_ms);
    if (budget_ms == 0)
        return redis_deadline_passed(r);
    redisContext *ctx = cascade_redis_host_is_unix(r->host)
                            ? redisConnectUnixWithTimeout(r->host, ms_to_tv(budget_ms))
                            : redisConnectWithTimeout(r->host, r->port, ms_to_tv(budget_ms));
    if (!ctx) {
        set_error(r, "out of memory");
        return CASCADE_ENOMEM;
    }
    if (ctx->err) {
        char reason[200];
        snprintf(reason, sizeof(reason), "%s", ctx->errstr);
        if (strstr(reason, "Resource temporarily unavailable") || strstr(reason, "timed out"))
            snprintf(reason, sizeof(reason), "connect timed out after %d ms%s", budget_ms,
                     budget_ms < r->connect_timeout_ms ? " (the request deadline)" : "");
        set_error(r, reason);
        redisFree(ctx);
        return CASCADE_EUNAVAILABLE;
    }
    /* AUTH is the first command on the connection: it gets the same bound. */
    int command_ms = redis_budget_ms(r, r->command_timeout_ms);
    if (command_ms == 0) {
        redisFree(ctx);
        return redis_deadline_passed(r);
    }
    if (redisSetTimeout(ctx, ms_to_tv(command_ms)) != REDIS_OK) {
        set_error(r, "cannot set the command timeout");
        redisFree(ctx);
        return CASCADE_EUNAVAILABLE;
    }
    int rc = redis_auth(r, ctx);
    if (rc != 0) {
        redisFree(ctx);
        return rc;
    }
    r->ctx = ctx;
    r->pending = 0;
    r->armed_timeout_ms = command_ms;
    return 0;
}

/* Give the socket the timeout for the next command (or pipelined read):
 * min(command_timeout_ms, time left before the deadline). Connects first if
 * needed. The socket is only touched when the timeout changes. */
static int redis_arm(cascade_redis *r)
{
    int rc = redis_connect(r);
    if (rc != 0)
        return rc;
    int budget_ms = redis_budget_ms(r, r->command_timeout_ms);
    if (budget_ms == 0)
        return redis_deadline_passed(r);
    if (budget_ms == r->armed_timeout_ms)
        return 0;
    if (redisSetTimeout(r->ctx, ms_to_tv(budget_ms)) != REDIS_OK) {
        set_error(r, "cannot set the command timeout");
        redis_disconnect(r);
        return CASCADE_EUNAVAILABLE;
    }
    r->armed_timeout_ms = budget_ms;
    return 0;
}

/* The connection failed mid-command: remember why and drop it so the next
 * call reconnects. saved_errno is errno right after the failing call. */
static int redis_io_failure(cascade_redis *r, int saved_errno)
{
    char reason[200];
    if (r->ctx && r->ctx->err == REDIS_ERR_OTHER) {
        /* hiredis refused the command itself ("Invalid format string"). */
        set_error(r, r->ctx->errstr);
        redis_disconnect(r);
        return CASCADE_EINVAL;
    }
    if (r->ctx && r->ctx->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
         strstr(r->ctx->errstr, "temporarily unavailable")))
        snprintf(reason, sizeof(reason), "command timed out after %d ms%s", r->armed_timeout_ms,
                 r->armed_timeout_ms < r->command_timeout_ms ? " (the request deadline)" : "");
    else if (r->ctx && r->ctx->err)
        snprintf(reason, sizeof(reason), "%s", r->ctx->errstr);
    else
        snprintf(reason, sizeof(reason), "connection lost");
    set_error(r, reason);
    redis_disconnect(r);
    return CASCADE_EUNAVAILABLE;
}

/* Turn a hiredis reply into our status: an error reply is freed and reported. */
static int redis_check_reply(cascade_redis *r, redisReply *rep, redisReply **out, int saved_errno)
{
    *out = NULL;
    if (!rep)
        return redis_io_failure(r, saved_errno);
    if (rep->type == REDIS_REPLY_ERROR) {
        if (strncmp(rep->str, "NOAUTH", 6) == 0)
            cascade_redis__set_error(r,
                                     "%s (this server needs a password: set "
                                     "CASCADE_REDIS_PASSWORD, redis.password_file or "
                                     "--redis-password-file)",
                                     rep->str);
        else
            set_error(r, rep->str);
        freeReplyObject(rep);
        return CASCADE_EIO;
    }
    r->err[0] = '\0';
    *out = rep;
    return 0;
}

static int redis_ready_for_command(cascade_redis *r)
{
    if (r->pending > 0) {
        set_error(r, "a command was issued before reading the pipelined replies");
        return CASCADE_EINVAL;
    }
    return redis_arm(r);
}

static int redis_vcommand(cascade_redis *r, redisReply **reply, const char *fmt, va_list ap)
{
    int rc = redis_ready_for_command(r);
    if (rc != 0) {
        *reply = NULL;
        return rc;
    }
    errno = 0;
    r->round_trips++;
    redisReply *rep = redisvCommand(r->ctx, fmt, ap);
    return redis_check_reply(r, rep, reply, errno);
}

int cascade_redis_command(cascade_redis *r, redisReply **reply, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redis_vcommand(r, reply, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- argv commands ----
 * Formatted here rather than by hiredis's redisFormatSdsCommandArgv, which
 * grows an sds through sdscatfmt once per argument: the HMGET of a thousand
 * online counters cost more in that formatting than in all of pre-rank's
 * other non-model work. The bytes are the same RESP (decimal.h lengths). */

/* Commands up to this size are formatted on the stack. */
#define REDIS_FORMAT_STACK 4096

static size_t resp_len_digits(size_t v)
{
    size_t d = 1;
    for (; v >= 10; v /= 10)
        d++;
    return d;
}

/* Length of argument i: argvlen[i], or strlen when argvlen is NULL (as
 * hiredis takes it). */
static size_t arg_len(const char **argv, const size_t *argvlen, int i)
{
    return argvlen ? argvlen[i] : strlen(argv[i]);
}

size_t cascade_redis__format_argv_len(int argc, const char **argv, const size_t *argvlen)
{
    size_t total = 1 + resp_len_digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, argvlen, i);
        total += 1 + resp_len_digits(len) + 2 + len + 2;
    }
    return total;
}

/* One "<mark><decimal>\r\n" header at p (the digits' NUL is overwritten by
 * the \r); returns the end. */
static char *resp_header(char *p, char mark, size_t v)
{
    *p++ = mark;
    p += cascade_decimal_u64(p, v);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t cascade_redis__format_argv(char *buf, int argc, const char **argv, const size_t *argvlen)
{
    char *p = resp_header(buf, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, argvlen, i);
        p = resp_header(p, '$', len);
        if (len > 0)
            memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - buf);
}

/* Queue argv in hiredis's output buffer (nothing is sent yet). REDIS_OK, or
 * REDIS_ERR with ctx->err set (out of memory). */
static int redis_append_argv_raw(redisContext *ctx, int argc, const char **argv,
                                 const size_t *argvlen)
{
    char stack[REDIS_FORMAT_STACK];
    size_t len = cascade_redis__format_argv_len(argc, argv, argvlen);
    char *buf = len <= sizeof stack ? stack : malloc(len);
    if (!buf) {
        ctx->err = REDIS_ERR_OOM;
        snprintf(ctx->errstr, sizeof ctx->errstr, "Out of memory");
        return REDIS_ERR;
    }
    cascade_redis__format_argv(buf, argc, argv, argvlen);
    int status = redisAppendFormattedCommand(ctx, buf, len);
    if (buf != stack)
        free(buf);
    return status;
}

int cascade_redis_command_argv(cascade_redis *r, redisReply **reply, int argc, const char **argv,
                               const size_t *argvlen)
{
    int rc = redis_ready_for_command(r);
    if (rc != 0) {
        *reply = NULL;
        return rc;
    }
    errno = 0;
    /* What redisCommandArgv does on a blocking context: append, then read. */
    void *rep = NULL;
    r->round_trips++;
    if (redis_append_argv_raw(r->ctx, argc, argv, argvlen) != REDIS_OK ||
        redisGetReply(r->ctx, &rep) != REDIS_OK)
        rep = NULL;
    return redis_check_reply(r, rep, reply, errno);
}

/* ---- pipelining ---- */

static int redis_after_append(cascade_redis *r, int status)
{
    if (status != REDIS_OK) {
        /* Drop the connection with everything queued on it, so a half-built
         * pipeline (e.g. a MULTI without its EXEC) is never sent. */
        int rc = r->ctx->err == REDIS_ERR_OOM ? CASCADE_ENOMEM : CASCADE_EINVAL;
        set_error(r, r->ctx->errstr);
        redis_disconnect(r);
        return rc;
    }
    r->pending++;
    return 0;
}

int cascade_redis_append(cascade_redis *r, const char *fmt, ...)
{
    int rc = redis_connect(r);
    if (rc != 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    int status = redisvAppendCommand(r->ctx, fmt, ap);
    va_end(ap);
    return redis_after_append(r, status);
}

int cascade_redis_append_argv(cascade_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    int rc = redis_connect(r);
    if (rc != 0)
        return rc;
    return redis_after_append(r, redis_append_argv_raw(r->ctx, argc, argv, argvlen));
}

int cascade_redis_get_reply(cascade_redis *r, redisReply **reply)
{
    *reply = NULL;
    if (!r->ctx || r->pending == 0) {
        /* Either the connection dropped earlier in this pipeline (err already
         * says why) or nothing was queued. */
        if (!r->err[0])
            set_error(r, "no pipelined command is waiting for a reply");
        return r->ctx ? CASCADE_EINVAL : CASCADE_EUNAVAILABLE;
    }
    int rc = redis_arm(r);
    if (rc != 0) {
        /* The pipeline cannot be finished in time: drop it with the connection
         * (the next get_reply says CASCADE_EUNAVAILABLE, as after any drop). */
        redis_disconnect(r);
        return rc;
    }
    void *rep = NULL;
    errno = 0;
    /* Commands still in the output buffer: this read sends them and waits. */
    if (sdslen(r->ctx->obuf) > 0)
        r->round_trips++;
    int status = redisGetReply(r->ctx, &rep);
    int saved = errno;
    if (status != REDIS_OK)
        return redis_io_failure(r, saved);
    r->pending--;
    return redis_check_reply(r, rep, reply, saved);
}

uint64_t cascade_redis_round_trips(const cascade_redis *r)
{
    return r->round_trips;
}

/* ---- messages nobody asked for (a SUBSCRIBEd connection) ---- */

void cascade_redis_disconnect(cascade_redis *r)
{
    if (r)
        redis_disconnect(r);
}

int cascade_redis_read_message(cascade_redis *r, redisReply **reply, int timeout_ms)
{
    void *rep = NULL;
    *reply = NULL;
    if (!r->ctx) {
        if (!r->err[0])
            set_error(r, "not connected");
        return CASCADE_EUNAVAILABLE;
    }
    errno = 0;
    /* A message already buffered by an earlier read comes first. */
    if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK)
        return redis_io_failure(r, errno);
    if (!rep) {
        struct pollfd pfd = {.fd = r->ctx->fd, .events = POLLIN};
        int ready = poll(&pfd, 1, timeout_ms);
        if (ready < 0 && errno != EINTR) {
            set_error(r, strerror(errno));
            redis_disconnect(r);
            return CASCADE_EUNAVAILABLE;
        }
        if (ready <= 0)
            return CASCADE_ETIMEDOUT;
        errno = 0;
        if (redisBufferRead(r->ctx) != REDIS_OK ||
            redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK)
            return redis_io_failure(r, errno);
        if (!rep) /* part of a message: the rest comes with the next read */
            return CASCADE_ETIMEDOUT;
    }
    return redis_check_reply(r, rep, reply, 0);
}

/* ---- per-thread pool ---- */

struct pool_entry {
    cascade_redis_pool *pool;
    cascade_redis *redis;
    struct pool_entry *next;
};

struct cascade_redis_pool {
    pthread_key_t key;
    pthread_mutex_t lock; /* guards entries */
    struct pool_entry *entries;
    struct cascade_redis_opts opts;
    char host[256];
    struct cascade_redis_auth auth; /* copies of opts.user / opts.password */
};

static void pool_unlink_locked(cascade_redis_pool *p, struct pool_entry *e)
{
    for (struct pool_entry **pp = &p->entries; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            return;
        }
    }
}

/* Runs when a thread that used the pool exits: its connection goes with it. */
static void pool_thread_exit(void *value)
{
    struct pool_entry *e = value;
    cascade_redis_pool *p = e->pool;
    pthread_mutex_lock(&p->lock);
    pool_unlink_locked(p, e);
    pthread_mutex_unlock(&p->lock);
    cascade_redis_destroy(e->redis);
    free(e);
}

cascade_redis_pool *cascade_redis_pool_create(const struct cascade_redis_opts *opts)
{
    cascade_redis_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (opts)
        p->opts = *opts;
    if (p->opts.host) {
        snprintf(p->host, sizeof(p->host), "%s", p->opts.host);
        p->opts.host = p->host;
    }
    if (p->opts.password && p->opts.password[0]) {
        if (strlen(p->opts.password) >= sizeof(p->auth.password) ||
            (p->opts.user && strlen(p->opts.user) >= sizeof(p->auth.user))) {
            free(p);
            return NULL;
        }
        snprintf(p->auth.password, sizeof(p->auth.password), "%s", p->opts.password);
        snprintf(p->auth.user, sizeof(p->auth.user), "%s", p->opts.user ? p->opts.user : "");
        p->opts.password = p->auth.password;
        p->opts.user = p->auth.user;
    } else {
        p->opts.password = p->opts.user = NULL;
    }
    if (pthread_key_create(&p->key, pool_thread_exit) != 0) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void cascade_redis_pool_destroy(cascade_redis_pool *p)
{
    if (!p)
        return;
    /* After this no thread-exit destructor runs for the key. */
    pthread_key_delete(p->key);
    struct pool_entry *e = p->entries;
    while (e) {
        struct pool_entry *next = e->next;
        cascade_redis_destroy(e->redis);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&p->lock);
    memset(p->auth.password, 0, sizeof(p->auth.password));
    free(p);
}

const struct cascade_redis_opts *cascade_redis_pool_opts(const cascade_redis_pool *p)
{
    return &p->opts;
}

cascade_redis *cascade_redis_pool_get(cascade_redis_pool *p)
{
    struct pool_entry *e = pthread_getspecific(p->key);
    if (e) {
        e->redis->deadline_ms = INT64_MAX; /* a new request sets its own */
        return e->redis;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->pool = p;
    e->redis = cascade_redis_create(&p->opts);
    if (!e->redis || pthread_setspecific(p->key, e) != 0) {
        cascade_redis_destroy(e->redis);
        free(e);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    e->next = p->entries;
    p->entries = e;
    pthread_mutex_unlock(&p->lock);
    return e->redis;
}

/* ---- credentials ---- */

int cascade_redis_read_secret_file(const char *path, const char *what, char *dst, size_t len,
                                   char *err, size_t errlen)
{
    int rc = CASCADE_EINVAL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return rc;
    }
    dst[0] = '\0';
    if (!fgets(dst, (int)len, f)) {
        snprintf(err, errlen, "%s %s: the file is empty", what, path);
        goto out;
    }
    size_t n = strlen(dst);
    if (n == len - 1 && dst[n - 1] != '\n' && fgetc(f) != EOF) {
        snprintf(err, errlen, "%s %s: longer than %zu characters", what, path, len - 2);
        goto out;
    }
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
        dst[--n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s %s: the first line is empty", what, path);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        memset(dst, 0, len);
    fclose(f);
    return rc;
}

int cascade_redis_auth_from_env(struct cascade_redis_auth *auth, char *err, size_t errlen)
{
    memset(auth, 0, sizeof(*auth));
    const char *user = getenv("CASCADE_REDIS_USER");
    const char *password = getenv("CASCADE_REDIS_PASSWORD");
    const char *file = getenv("CASCADE_REDIS_PASSWORD_FILE");
    if (user && strlen(user) >= sizeof(auth->user)) {
        snprintf(err, errlen, "CASCADE_REDIS_USER is longer than %zu characters",
                 sizeof(auth->user) - 1);
        return CASCADE_EINVAL;
    }
    snprintf(auth->user, sizeof(auth->user), "%s", user ? user : "");
    if (password && password[0]) {
        if (strlen(password) >= sizeof(auth->password)) {
            snprintf(err, errlen, "CASCADE_REDIS_PASSWORD is longer than %zu characters",
                     sizeof(auth->password) - 1);
            return CASCADE_EINVAL;
        }
        snprintf(auth->password, sizeof(auth->password), "%s", password);
        return 0;
    }
    if (file && file[0])
        return cascade_redis_read_secret_file(file, "CASCADE_REDIS_PASSWORD_FILE", auth->password,
                                              sizeof(auth->password), err, errlen);
    return 0;
}

int cascade_redis_tool_opts(const char *addr, int command_timeout_ms,
                            struct cascade_redis_tool_conn *buf, struct cascade_redis_opts *out,
                            char *err, size_t errlen)
{
    int port;
    memset(out, 0, sizeof(*out));
    if (cascade_redis_parse_addr(addr, buf->host, sizeof(buf->host), &port) != 0) {
        snprintf(err, errlen, "--redis: expected HOST:PORT or unix:/PATH, got '%s'", addr);
        return CASCADE_EINVAL;
    }
    if (cascade_redis_auth_from_env(&buf->auth, err, errlen) != 0)
        return CASCADE_EINVAL;
    out->host = buf->host;
    out->port = port;
    out->connect_timeout_ms = 2000;
    out->command_timeout_ms = command_timeout_ms;
    out->user = buf->auth.user;
    out->password = buf->auth.password;
    return 0;
}

void cascade_redis_tool_wipe(struct cascade_redis_tool_conn *buf)
{
    volatile char *p = buf->auth.password;
    for (size_t i = 0; i < sizeof(buf->auth.password); i++)
        p[i] = '\0';
}
