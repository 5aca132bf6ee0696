/* Service bootstrap shared by every cascade-<stage> main: flags, environment
 * and config-file options with one precedence (flag > env > config > default),
 * signal handling, and the run loop (start, wait for SIGTERM/SIGINT, drain, exit).
 *
 * Common flags (every service):
 *   --config FILE        JSON config (env CASCADE_CONFIG)
 *   --listen ADDR        host:port to serve on (env CASCADE_<NAME>_LISTEN, config <name>.listen)
 *   --listen-unix PATH   also serve on this Unix socket (env CASCADE_<NAME>_LISTEN_UNIX,
 *                        config <name>.listen_unix; default off)
 *   --metrics-listen ADDR  host:port of the Prometheus /metrics endpoint, or "off"
 *                        (env CASCADE_<NAME>_METRICS_LISTEN, config <name>.metrics_listen;
 *                        default: the --listen host, port + 1000; docs/metrics.md)
 *   --redis ADDR         host:port of Redis, or unix:/path of its socket (env CASCADE_REDIS, config
 * redis.addr)
 *   --redis-password-file FILE  Redis AUTH password, first line of FILE (env
 *                        CASCADE_REDIS_PASSWORD_FILE, config redis.password_file); the
 *                        password itself: env CASCADE_REDIS_PASSWORD, config redis.password,
 *                        or --redis-password (visible in ps; prefer the file or env)
 *   --redis-user USER    ACL user for AUTH (env CASCADE_REDIS_USER, config redis.user)
 *   --auth-token-file FILE  require "authorization: Bearer <token>" on every call (env
 *                        CASCADE_AUTH_TOKEN_FILE, or the token in env CASCADE_AUTH_TOKEN;
 *                        config auth.token_file); the orchestrator also sends it to the
 *                        stages. Default off.
 *   --tls-cert FILE --tls-key FILE  serve TLS only, with this PEM certificate chain and
 *                        key (env CASCADE_TLS_CERT / CASCADE_TLS_KEY, config tls.cert_file /
 *                        tls.key_file); --tls-client-ca FILE also requires client
 *                        certificates signed by that CA (mTLS; env CASCADE_TLS_CLIENT_CA,
 *                        config tls.client_ca_file). Default plaintext.
 *   --tls-ca FILE        the orchestrator's stage channels use TLS and trust this CA (env
 *                        CASCADE_TLS_CA, config tls.ca_file); --tls-client-cert FILE
 *                        --tls-client-key FILE present a client certificate (env
 *                        CASCADE_TLS_CLIENT_CERT / CASCADE_TLS_CLIENT_KEY, config
 *                        tls.client_cert_file / tls.client_key_file)
 *   --namespace NS       Redis key prefix (env CASCADE_NAMESPACE, config redis.namespace; default
 * "cascade")
 *   --threads N          worker threads (env CASCADE_THREADS, config <name>.threads; default cores)
 *   --model-dir DIR      model directory (env CASCADE_MODEL_DIR, config model_dir; default
 * "models")
 *   --grace-ms N         shutdown grace period (config <name>.grace_ms; default 5000)
 *   --max-message-bytes N  largest request accepted, larger ones get RESOURCE_EXHAUSTED
 *                        (env CASCADE_MAX_MESSAGE_BYTES, config <name>.max_message_bytes;
 *                        default 4194304, gRPC's usual 4 MiB; 65536..1073741824)
 *   --log-level LEVEL    debug|info|warn|error (env CASCADE_LOG_LEVEL; default info)
 *   --set PATH=VALUE     override any config key (repeatable)
 *   --help
 *
 * SIGHUP re-reads --config (docs/experiments.md, "Config hot reload").
 */
#ifndef CASCADE_SERVICE_H
#define CASCADE_SERVICE_H

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "rpc.h"

struct cascade_service_opts {
    const char *name; /* "recall" (borrowed, static) */
    char listen[256];
    char listen_unix[CASCADE_UNIX_PATH_MAX]; /* "" = no Unix socket listener (--listen-unix) */
    char metrics_listen[256];                /* "" when the endpoint is off */
    char redis_host[256];
    int redis_port;
    char redis_user[128];     /* "" = AUTH without a user name */
    char redis_password[512]; /* "" = no AUTH; wiped by cascade_service_opts_free */
    char auth_token[256];     /* "" = no bearer token required */
    /* TLS PEM file names ("" = unset), resolved flag > env > config and
     * written back into the config under tls.* so stages that open channels
     * (the orchestrator) see them. Server side: */
    char tls_cert[512];
    char tls_key[512];
    char tls_client_ca[512];
    /* Client side (outgoing channels): */
    char tls_ca[512];
    char tls_client_cert[512];
    char tls_client_key[512];
    char ns[64];
    int threads;
    char model_dir[512];
    char config_path[512];
    int grace_ms;
    /* Request size limit; written back into the config as
     * <name>.max_message_bytes so a stage's own channels (the orchestrator's
     * stage calls) accept answers up to the same size. */
    size_t max_message_bytes;
    /* Request metadata limit (env CASCADE_MAX_METADATA_BYTES, config
     * <name>.max_metadata_bytes; 64 KiB): struct cascade_rpc_server_opts. */
    size_t max_metadata_bytes;
    enum cascade_log_level log_level;
    cascade_config *config; /* owned; freed by cascade_service_opts_free */
};

/* Parse flags/env/config for service `name` whose default port is
 * default_port. `extra_usage` (may be NULL) is printed under --help for
 * service-specific config keys. Returns 0, 1 when --help was printed (exit 0),
 * or a negative code after printing "cascade-<name>: <problem>" to stderr. */
int cascade_service_parse_args(const char *name, int default_port, const char *extra_usage,
                               int argc, char **argv, struct cascade_service_opts *out);
void cascade_service_opts_free(struct cascade_service_opts *o);

/* Redis connection options from the service options (timeouts from config
 * redis.connect_timeout_ms / redis.command_timeout_ms; user and password
 * point into o, which must outlive the options' use). */
struct cascade_redis_opts cascade_service_redis_opts(const struct cascade_service_opts *o);

/* Block SIGTERM/SIGINT/SIGPIPE/SIGHUP/SIGUSR1 in the calling thread (call
 * first in main, so every thread inherits the mask) and wait for
 * SIGTERM/SIGINT. SIGHUP and SIGUSR1 are blocked so that only the serve loop
 * sees them: SIGHUP reloads the config, SIGUSR1 turns health NOT_SERVING
 * while calls are still served (the drain a pod's preStop hook starts;
 * docs/deploy.md). */
void cascade_signals_block(void);
int cascade_signals_wait(void);

/* Create the service's metrics registry and, unless the endpoint is off,
 * serve it on o->metrics_listen (logs the address). Call it after
 * cascade_signals_block (the HTTP thread must inherit the mask) and before
 * creating the stage, so the stage can register its own metrics; pass the
 * same registry to cascade_service_run. The caller owns it: destroy it after
 * the stage. Returns NULL after logging the problem (address in use, out of
 * memory); exit 1 then. */
cascade_metrics *cascade_service_metrics(const struct cascade_service_opts *o);

/* Create the server (recording RPC metrics into `metrics`, borrowed, may be
 * NULL), start it, log "serving ...", wait for a termination signal, shut
 * down gracefully (SIGHUP is logged and ignored: reloads need
 * cascade_service_main). Returns the process exit code. */
int cascade_service_run(const struct cascade_service_opts *o, cascade_metrics *metrics,
                        const char *grpc_service_name, const struct cascade_rpc_method *methods,
                        size_t n_methods, void *service);

/* One stage served by cascade_service_main: its name and default port (for
 * flags, environment, --help and messages), the gRPC service it implements,
 * and callbacks that create it, list its methods and destroy it. */
struct cascade_service_stage {
    const char *name;         /* "recall" */
    int default_port;         /* 50051 */
    const char *extra_usage;  /* stage config keys for --help; may be NULL */
    const char *grpc_service; /* "cascade.v1.Recall" */
    int needs_redis;          /* create a Redis pool and pass it to create */
    int create_failed_code;   /* exit code when create fails (0 means 1) */
    /* Worker threads per core when neither --threads nor <name>.threads
     * says (0 means 1): a stage whose handlers mostly wait on other
     * services (the orchestrator) needs more workers than cores. */
    int threads_per_core;
    /* Build the stage from the parsed options; redis is NULL unless
     * needs_redis. Returns NULL after writing the problem into err. */
    void *(*create)(const struct cascade_service_opts *o, cascade_redis_pool *redis,
                    cascade_metrics *metrics, char *err, size_t errlen);
    const struct cascade_rpc_method *(*methods)(size_t *n);
    void (*destroy)(void *stage); /* must accept NULL */
    /* Apply a config re-read on SIGHUP; NULL when the stage takes no live
     * changes (a change to its section is then logged as needing a
     * restart). Called on the main thread while workers serve requests, so
     * it must swap its state safely under concurrent calls. cfg (borrowed)
     * stays alive until the process exits. Returns 0, or a negative code
     * with the reason in err, and then nothing changed: the old config
     * keeps serving. */
    int (*reload)(void *stage, const cascade_config *cfg, char *err, size_t errlen);
    /* Whether the stage can do its work now (e.g. reach its store); NULL
     * means always. Polled every 250 ms on the main thread while serving:
     * grpc.health.v1 reports NOT_SERVING while it returns false and SERVING
     * again after, until a drain (SIGUSR1, SIGTERM) takes over. Must be
     * cheap and safe against the stage's own threads. */
    bool (*healthy)(void *stage);
};

/* The whole main of cascade-<stage>: block signals, parse options, serve
 * metrics, create the Redis pool and the stage, run until SIGTERM/SIGINT,
 * clean up. On SIGHUP it re-reads the config (the same command line parsed
 * again) and hands it to stage->reload; a config that does not load or
 * that the stage refuses is logged and the old one keeps serving. Options
 * fixed at start (listen, threads, Redis, TLS, ...) are logged as "needs
 * restart" when they change. Metrics: cascade_config_info{hash,version} 1
 * for the active config, cascade_config_reloads_total{result}. Returns the process exit code (0
 * after --help or a clean stop, 2 for bad options, 1 when a resource could not be set up). */
int cascade_service_main(const struct cascade_service_stage *stage, int argc, char **argv);

#endif
