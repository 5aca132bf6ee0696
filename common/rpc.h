/* The RPC runtime over gRPC C core (no C++). A server runs N worker threads,
 * each with its own completion queue and pre-posted calls for every registered
 * method; a handler gets the decoded request, the call's absolute deadline and
 * a per-request arena, and returns a response or an error status with a
 * message. grpc.health.v1.Health (Check and Watch) is built in. The client
 * side offers unary calls with deadlines and a fan-out that runs K calls at
 * once and reports each call's status.
 *
 * Thread-safety: a server is driven from one controlling thread (create, start,
 * shutdown, destroy); set_serving may be called from any thread. Channels are
 * thread-safe and meant to be shared. */
#ifndef CASCADE_RPC_H
#define CASCADE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "metrics.h"

/* ------------------------------------------------------------------ server */

typedef struct cascade_rpc_server cascade_rpc_server;
typedef struct cascade_rpc_ctx cascade_rpc_ctx;

/* A handler: decode is done, `request` is a message of the method's request
 * type allocated in the request arena. Return 0 and set *response to a message
 * of the response type (allocate it from cascade_rpc_ctx_arena), or return a
 * negative CASCADE_E* code after cascade_rpc_ctx_fail set a message.
 * `service` is the pointer given to cascade_rpc_server_create. Handlers run on
 * worker threads concurrently. */
typedef int (*cascade_rpc_handler)(void *service, cascade_rpc_ctx *ctx,
                                   const ProtobufCMessage *request, ProtobufCMessage **response);

struct cascade_rpc_method {
    const char *path; /* "/cascade.v1.Recall/Recall" */
    const ProtobufCMessageDescriptor *request_type;
    const ProtobufCMessageDescriptor *response_type;
    cascade_rpc_handler handler;
};

struct cascade_rpc_server_opts {
    const char *listen_addr; /* "127.0.0.1:50051"; port 0 picks a free port */
    /* A second listener on a Unix socket: an absolute path (a stale socket
     * file there is replaced), served like the TCP one, with the same
     * credentials. NULL or "": none. For callers on the same host, which
     * reach it as "unix:PATH" and skip the loopback TCP stack. */
    const char *listen_unix;
    int threads; /* worker threads; 0 = number of cores */
    /* Pre-posted calls per method per thread; 0 = 1. Keep it at 1: gRPC
     * matches the calls of one connection to the first completion queue with
     * a pending request, so with more a busy worker keeps receiving calls
     * while the others idle (a caller's fan-out ran one call at a time). */
    int calls_per_method;
    /* Larger requests get RESOURCE_EXHAUSTED (from gRPC itself, before a
     * worker sees them; not counted in the metrics). 0 = 4 MiB, gRPC's usual
     * default; at most INT_MAX. */
    size_t max_message_bytes;
    /* Largest request metadata (headers) accepted, gRPC's max_metadata_size:
     * 0 = 64 KiB. gRPC 1.51 drops the whole HTTP/2 connection, with every
     * other call on it, when one call's headers exceed it, so it is set well
     * above any header a client of ours sends (docs/orchestrator.md). */
    size_t max_metadata_bytes;
    size_t arena_limit_bytes; /* per-request memory cap; 0 = 256 MiB */
    const char *service_name; /* health service name, e.g. "cascade.v1.Recall" */
    /* Optional registry (borrowed; must outlive the server). When set, every
     * unary call (health Check included, Watch streams not) is recorded:
     * cascade_rpc_requests_total{method,code} (method = path without the
     * leading '/', code = gRPC status name), cascade_rpc_latency_seconds{method}
     * (arrival at a worker to reply queued: decode, handler, encode) and the
     * cascade_rpc_in_flight gauge. Recorded before the reply is sent, so a
     * client that got its answer sees the call counted. */
    cascade_metrics *metrics;
    /* Optional bearer token (copied; visible ASCII, at most 256 characters).
     * When set, every call except the health service must carry metadata
     * "authorization: Bearer <token>", else it is answered UNAUTHENTICATED
     * before the request is decoded. NULL or "" = no check (the default). */
    const char *auth_token;
    /* Optional TLS (docs/stages.md "TLS"): PEM files, read when the server is
     * created. With tls_cert_file and tls_key_file set the port speaks only
     * TLS (plaintext clients fail the handshake); with tls_client_ca_file too,
     * every client must present a certificate signed by that CA (mTLS). All
     * NULL or "" = plaintext (the default). cert and key go together. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
};

/* Bytes a Unix socket path may hold, its NUL included (sizeof
 * sockaddr_un.sun_path on Linux). */
#define CASCADE_UNIX_PATH_MAX 108

/* True when `path` can be a listen_unix socket: absolute and shorter than
 * CASCADE_UNIX_PATH_MAX. */
bool cascade_rpc_unix_path_ok(const char *path);

/* Create a server for `methods` (copied). On failure returns NULL with a message in err. */
cascade_rpc_server *cascade_rpc_server_create(const struct cascade_rpc_server_opts *opts,
                                              const struct cascade_rpc_method *methods,
                                              size_t n_methods, void *service, char *err,
                                              size_t errlen);

/* Bind and start the worker threads; health becomes SERVING. Returns 0 or a
 * negative code with a message ("listen 127.0.0.1:50051: address in use"). */
int cascade_rpc_server_start(cascade_rpc_server *s, char *err, size_t errlen);

/* The TCP port actually bound (useful with port 0). */
int cascade_rpc_server_port(const cascade_rpc_server *s);

/* Switch the health status reported for "" and the service name. Watchers are told. */
void cascade_rpc_server_set_serving(cascade_rpc_server *s, bool serving);

/* Graceful stop: health NOT_SERVING, stop accepting, let in-flight calls finish
 * for up to grace_ms, then cancel what is left and join the workers. */
void cascade_rpc_server_shutdown(cascade_rpc_server *s, int grace_ms);

/* Free the server (shuts down first if still running). NULL is a no-op. */
void cascade_rpc_server_destroy(cascade_rpc_server *s);

/* Per-request context, valid only during the handler call. */
cascade_arena *cascade_rpc_ctx_arena(cascade_rpc_ctx *ctx);
/* Absolute deadline on the cascade_now_ms clock; INT64_MAX when the caller set none. */
int64_t cascade_rpc_ctx_deadline_ms(const cascade_rpc_ctx *ctx);
/* True once the deadline has passed: long handlers check it between steps. */
bool cascade_rpc_ctx_expired(const cascade_rpc_ctx *ctx);
/* The caller's "x-request-id" metadata, or "" when absent. */
const char *cascade_rpc_ctx_request_id(const cascade_rpc_ctx *ctx);
/* The method path being served. */
const char *cascade_rpc_ctx_method(const cascade_rpc_ctx *ctx);
/* The caller's metadata value for `key` (lower-case, e.g. "x-debug-token"),
 * copied into the request arena, or "" when absent. */
const char *cascade_rpc_ctx_metadata(cascade_rpc_ctx *ctx, const char *key);
/* The caller's address as gRPC reports it ("ipv4:127.0.0.1:5123",
 * "ipv6:[::1]:5123", "unix:..."), copied into the request arena, or "". */
const char *cascade_rpc_ctx_peer(cascade_rpc_ctx *ctx);
/* Index of the worker thread running the handler, 0..threads-1. */
int cascade_rpc_ctx_thread_index(const cascade_rpc_ctx *ctx);
/* Record an error message (printf-style) and return `code` for the handler to
 * return: `return cascade_rpc_ctx_fail(ctx, CASCADE_EINVAL, "user_id is empty");` */
int cascade_rpc_ctx_fail(cascade_rpc_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ client */

typedef struct cascade_rpc_channel cascade_rpc_channel;

/* How a client channel connects. Zero fields take the defaults, chosen so a
 * restarted stage is used again within about a second: gRPC's own defaults
 * (first retry after 1 s, growing 1.6x to 120 s, a 20 s connect timeout) kept
 * callers degraded for many seconds after the stage was back. */
struct cascade_rpc_channel_opts {
    size_t max_message_bytes; /* largest answer accepted; 0 = 4 MiB */
    int initial_backoff_ms;   /* wait before the first reconnect attempt; 0 = 100 */
    int max_backoff_ms;       /* cap of the growing wait (gRPC adds +-20% jitter); 0 = 800 */
    int connect_timeout_ms;   /* least time one connection attempt is given; 0 = 1000 */
    /* Optional TLS (PEM files, read when the channel is created): with
     * tls_ca_file set the channel speaks TLS and accepts only a server
     * certificate signed by that CA whose name matches the target host;
     * tls_cert_file + tls_key_file add a client certificate (for a server
     * that requires mTLS). NULL or "" = plaintext (the default). */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    /* Give the channel its own TCP connection: gRPC otherwise shares one
     * connection between channels with the same target and settings (its
     * global subchannel pool). A load generator's --connections needs this. */
    bool own_connection;
};

/* A channel to "host:port" (insecure, loopback/cluster-internal) that accepts
 * answers up to max_message_bytes (0 = 4 MiB; larger ones fail the call with
 * RESOURCE_EXHAUSTED), with the default reconnect settings above. Connection
 * is lazy; a dead endpoint shows as UNAVAILABLE on calls. Thread-safe; free with
 * cascade_rpc_channel_destroy (NULL-safe) after all calls on it finished. */
cascade_rpc_channel *cascade_rpc_channel_create(const char *target, size_t max_message_bytes);
/* The same with every connection setting given (opts may be NULL: defaults).
 * Returns NULL on a bad target, an unreadable TLS file or out of memory. */
cascade_rpc_channel *cascade_rpc_channel_create_opts(const char *target,
                                                     const struct cascade_rpc_channel_opts *opts);
/* The same, with the reason for a NULL result in err ("TLS CA file x: ..."). */
cascade_rpc_channel *cascade_rpc_channel_create_err(const char *target,
                                                    const struct cascade_rpc_channel_opts *opts,
                                                    char *err, size_t errlen);
/* The client tools' TLS settings (docs/stages.md "TLS"): env CASCADE_TLS_CA,
 * CASCADE_TLS_CLIENT_CERT, CASCADE_TLS_CLIENT_KEY into opts' tls fields
 * (pointers into the environment; unset leaves a field as it was). */
void cascade_rpc_channel_opts_tls_from_env(struct cascade_rpc_channel_opts *opts);
/* A client tool's channel: cascade_rpc_channel_create with the TLS settings
 * from the environment (above). NULL with the reason in err. */
cascade_rpc_channel *cascade_rpc_channel_create_env(const char *target, size_t max_message_bytes,
                                                    char *err, size_t errlen);
void cascade_rpc_channel_destroy(cascade_rpc_channel *ch);
const char *cascade_rpc_channel_target(const cascade_rpc_channel *ch);

/* Send "authorization: Bearer <token>" on every later call of this channel
 * (token copied; visible ASCII, at most 256 characters; NULL or "" stops
 * sending it). Call it before the channel is shared between threads.
 * Returns 0 or CASCADE_EINVAL. */
int cascade_rpc_channel_set_auth_token(cascade_rpc_channel *ch, const char *token);

/* The client tools' token (docs/stages.md "Authentication"): env
 * CASCADE_AUTH_TOKEN, else the first line of the file named by
 * CASCADE_AUTH_TOKEN_FILE, as the services read theirs; nothing set = no
 * token. Returns 0 or CASCADE_EINVAL with a readable message in err. */
int cascade_rpc_channel_auth_from_env(cascade_rpc_channel *ch, char *err, size_t errlen);

/* One outgoing unary call. The caller fills the inputs; the runtime fills the
 * outputs, allocating them from the arena passed to the call function. */
struct cascade_rpc_call {
    /* inputs */
    cascade_rpc_channel *channel;
    const char *method; /* "/cascade.v1.Recall/Recall" */
    const ProtobufCMessage *request;
    const ProtobufCMessageDescriptor *response_type;
    int64_t deadline_ms;    /* absolute, cascade_now_ms clock */
    const char *request_id; /* sent as x-request-id; may be NULL */
    /* outputs */
    grpc_status_code status;    /* GRPC_STATUS_OK on success */
    const char *status_message; /* arena string, "" when OK */
    ProtobufCMessage *response; /* arena message when OK, else NULL */
    int64_t latency_us;
};

/* Run one call to completion (or its deadline). Returns 0 when the status is
 * OK and the response decoded, otherwise a negative code; the status and
 * message are in the call either way. */
int cascade_rpc_call_unary(struct cascade_rpc_call *call, cascade_arena *arena);

/* Start all n calls at once and wait until every one has completed or passed
 * its own deadline (late ones are cancelled and report DEADLINE_EXCEEDED).
 * Returns the number of calls that succeeded. */
size_t cascade_rpc_fanout(struct cascade_rpc_call *calls, size_t n, cascade_arena *arena);

/* Send raw bytes as the request body (for tests that probe malformed input).
 * Fills call->status/status_message; the response bytes are ignored. */
int cascade_rpc_call_raw(struct cascade_rpc_call *call, const void *body, size_t len,
                         cascade_arena *arena);

/* Ask a server's health service. Returns 0 and sets *serving_status
 * (grpc.health.v1 ServingStatus value: 1 = SERVING, 2 = NOT_SERVING), or a
 * negative code with the status in err. */
int cascade_rpc_health_check(cascade_rpc_channel *ch, const char *service, int64_t deadline_ms,
                             int *serving_status, char *err, size_t errlen);

/* gRPC library lifetime: call init once before any server or channel is
 * created (services: in main) and shutdown after all are destroyed. */
void cascade_rpc_init(void);
void cascade_rpc_shutdown(void);

#endif
