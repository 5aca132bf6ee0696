/* Service bootstrap shared by every cascade-<stage> main: one option parser
 * with one precedence (flag > environment > config file > default), signal
 * handling, and the serve-until-SIGTERM loop. See service.h. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"
#include "service.h"

#define MAX_SETS 64
#define MAX_RELOADS_KEPT 4096
#define METRICS_PORT_OFFSET 1000
/* gRPC's usual default for received messages, and the accepted range. */
#define DEFAULT_MAX_MESSAGE_BYTES (4L << 20)
#define MIN_MAX_MESSAGE_BYTES (64L << 10)
#define MAX_MAX_MESSAGE_BYTES (1L << 30)
#define DEFAULT_MAX_METADATA_BYTES (64L << 10)
#define MIN_MAX_METADATA_BYTES (8L << 10)

static void upper_copy(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)toupper((unsigned char)src[i]);
    dst[i] = '\0';
}

static void print_usage(const char *name, int default_port, const char *extra)
{
    char upper[64];
    upper_copy(upper, sizeof(upper), name);
    printf(
        "usage: cascade-%s [options]\n\n"
        "options (flag > environment > config file > default):\n"
        "  --config FILE       JSON config file               env CASCADE_CONFIG\n"
        "  --listen ADDR       host:port to serve on           env CASCADE_%s_LISTEN, config "
        "%s.listen\n"
        "                      (default 127.0.0.1:%d)\n"
        "  --listen-unix PATH  also serve on this Unix socket (absolute path), for\n"
        "                      callers on the same host (\"unix:PATH\"): they skip the\n"
        "                      loopback TCP stack       env CASCADE_%s_LISTEN_UNIX, config\n"
        "                      %s.listen_unix (default off)\n"
        "  --metrics-listen ADDR\n"
        "                      Prometheus /metrics host:port, or off\n"
        "                      env CASCADE_%s_METRICS_LISTEN, config %s.metrics_listen\n"
        "                      (default: the --listen host with port + 1000, 127.0.0.1:%d\n"
        "                      here; --listen port 0 gives a free port, logged at start)\n"
        "  --redis ADDR        Redis host:port, or unix:/PATH  env CASCADE_REDIS, config "
        "redis.addr\n"
        "                      (default 127.0.0.1:6379)\n"
        "  --redis-password-file FILE\n"
        "                      Redis AUTH password (first line of FILE)\n"
        "                      env CASCADE_REDIS_PASSWORD_FILE, config redis.password_file;\n"
        "                      or the password in env CASCADE_REDIS_PASSWORD, config\n"
        "                      redis.password, --redis-password (visible in ps)\n"
        "  --redis-user USER   ACL user for AUTH               env CASCADE_REDIS_USER, config "
        "redis.user\n"
        "  --auth-token-file FILE\n"
        "                      require \"authorization: Bearer <token>\" (first line of FILE)\n"
        "                      on every call; the orchestrator also sends it to the stages\n"
        "                      env CASCADE_AUTH_TOKEN_FILE (or the token in CASCADE_AUTH_TOKEN),\n"
        "                      config auth.token_file (default off)\n"
        "  --tls-cert FILE --tls-key FILE\n"
        "                      serve TLS only with this PEM certificate chain and key\n"
        "                      env CASCADE_TLS_CERT / CASCADE_TLS_KEY, config tls.cert_file /\n"
        "                      tls.key_file (default plaintext)\n"
        "  --tls-client-ca FILE\n"
        "                      also require client certificates signed by this CA (mTLS)\n"
        "                      env CASCADE_TLS_CLIENT_CA, config tls.client_ca_file\n"
        "  --tls-ca FILE       outgoing channels (orchestrator to stages) use TLS, trusting\n"
        "                      this CA; env CASCADE_TLS_CA, config tls.ca_file\n"
        "  --tls-client-cert FILE --tls-client-key FILE\n"
        "                      client certificate for outgoing channels (mTLS)\n"
        "                      env CASCADE_TLS_CLIENT_CERT / CASCADE_TLS_CLIENT_KEY,\n"
        "                      config tls.client_cert_file / tls.client_key_file\n"
        "  --namespace NS      Redis key prefix                env CASCADE_NAMESPACE, config "
        "redis.namespace\n"
        "                      (default cascade)\n"
        "  --threads N         worker threads                  env CASCADE_THREADS, config "
        "%s.threads\n"
        "                      (default: number of cores)\n"
        "  --model-dir DIR     model directory                 env CASCADE_MODEL_DIR, config "
        "model_dir\n"
        "                      (default models)\n"
        "  --grace-ms N        shutdown grace period in ms     config %s.grace_ms (default 5000)\n"
        "  --max-message-bytes N\n"
        "                      largest request accepted; larger ones get RESOURCE_EXHAUSTED\n"
        "                      env CASCADE_MAX_MESSAGE_BYTES, config %s.max_message_bytes\n"
        "                      (default %ld, 4 MiB; %ld..%ld)\n"
        "  request headers     largest request metadata: env CASCADE_MAX_METADATA_BYTES,\n"
        "                      config %s.max_metadata_bytes (default %ld, 64 KiB)\n"
        "  --log-level LEVEL   debug|info|warn|error           env CASCADE_LOG_LEVEL (default "
        "info)\n"
        "  --set PATH=VALUE    override a config key, e.g. --set %s.threads=4 (repeatable)\n"
        "  --help              this text\n",
        name, upper, name, default_port, upper, name, upper, name,
        default_port + METRICS_PORT_OFFSET, name, name, name, DEFAULT_MAX_MESSAGE_BYTES,
        MIN_MAX_MESSAGE_BYTES, MAX_MAX_MESSAGE_BYTES, name, DEFAULT_MAX_METADATA_BYTES, name);
    if (extra && extra[0])
        printf("\n%s", extra);
    printf("\nSIGHUP re-reads --config: experiments apply live, a bad config is rejected and\n"
           "logged, settings that need a restart are logged as such (docs/experiments.md).\n");
}

/* Pick the first non-empty of flag, env, config string, default into dst. */
static int pick_string(char *dst, size_t len, const char *flag, const char *env_name,
                       const cascade_config *cfg, const char *path, const char *def,
                       const char *what)
{
    const char *v = flag;
    char err[512];
    if (!v && env_name)
        v = getenv(env_name);
    if ((!v || !v[0]) && cfg && path) {
        if (cascade_config_string(cfg, path, NULL, &v, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return CASCADE_EINVAL;
        }
    }
    if (!v || !v[0])
        v = def;
    if (strlen(v) >= len) {
        fprintf(stderr, "%s is too long (%zu characters, at most %zu)\n", what, strlen(v), len - 1);
        return CASCADE_EINVAL;
    }
    snprintf(dst, len, "%s", v);
    return 0;
}

/* Set path to a JSON string value (quotes and backslashes escaped). */
static int config_set_string(cascade_config *cfg, const char *path, const char *value, char *err,
                             size_t errlen)
{
    char assignment[1200];
    size_t n = (size_t)snprintf(assignment, sizeof(assignment), "%s=\"", path);
    for (const char *c = value; *c && n + 4 < sizeof(assignment); c++) {
        if (*c == '"' || *c == '\\')
            assignment[n++] = '\\';
        assignment[n++] = *c;
    }
    if (n + 2 > sizeof(assignment)) {
        snprintf(err, errlen, "%s: value too long", path);
        return CASCADE_EINVAL;
    }
    assignment[n++] = '"';
    assignment[n] = '\0';
    return cascade_config_set(cfg, assignment, err, errlen);
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return CASCADE_EINVAL;
    *out = v;
    return 0;
}

/* Integer option: flag > env > config > default, validated against [min,max]. */
static int pick_int(int *dst, const char *flag, const char *env_name, const cascade_config *cfg,
                    const char *path, long def, long min, long max, const char *what)
{
    const char *v = flag ? flag : (env_name ? getenv(env_name) : NULL);
    long parsed;
    char err[512];
    if (v && v[0]) {
        if (parse_int(v, min, max, &parsed) != 0) {
            fprintf(stderr, "%s: expected an integer in %ld..%ld, got \"%s\"\n", what, min, max, v);
            return CASCADE_EINVAL;
        }
        *dst = (int)parsed;
        return 0;
    }
    int64_t cv;
    if (cascade_config_int(cfg, path, def, min, max, &cv, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return CASCADE_EINVAL;
    }
    *dst = (int)cv;
    return 0;
}

/* The default metrics address: the host of `listen` with port + 1000 (port 0
 * stays 0: any free port). CASCADE_EINVAL when listen has no numeric port or
 * the sum is not a port. */
static int default_metrics_addr(const char *listen, char *dst, size_t len)
{
    const char *colon = strrchr(listen, ':');
    long port;
    if (!colon || (listen[0] == '[' && colon[-1] != ']'))
        return CASCADE_EINVAL;
    if (parse_int(colon + 1, 0, 65535, &port) != 0)
        return CASCADE_EINVAL;
    if (port != 0)
        port += METRICS_PORT_OFFSET;
    if (port > 65535)
        return CASCADE_EINVAL;
    int n = snprintf(dst, len, "%.*s:%ld", (int)(colon - listen), listen, port);
    return n > 0 && (size_t)n < len ? 0 : CASCADE_EINVAL;
}

/* --listen-unix: flag > env > config > off. An absolute path that fits a
 * Unix socket address, or "" (off). */
static int pick_listen_unix(const char *name, const char *upper, const char *flag,
                            struct cascade_service_opts *out)
{
    char env_name[96], path[128];
    snprintf(env_name, sizeof(env_name), "CASCADE_%s_LISTEN_UNIX", upper);
    snprintf(path, sizeof(path), "%s.listen_unix", name);
    if (pick_string(out->listen_unix, sizeof(out->listen_unix), flag, env_name, out->config, path,
                    "", "--listen-unix") != 0)
        return CASCADE_EINVAL;
    if (out->listen_unix[0] && !cascade_rpc_unix_path_ok(out->listen_unix)) {
        fprintf(stderr,
                "cascade-%s: --listen-unix: expected an absolute path shorter than %d bytes, "
                "got \"%s\"\n",
                name, CASCADE_UNIX_PATH_MAX, out->listen_unix);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* --metrics-listen: flag > env > config > default_metrics_addr; "off"
 * leaves out->metrics_listen empty. Needs out->listen and out->config. */
static int pick_metrics_listen(const char *name, const char *upper, const char *flag,
                               struct cascade_service_opts *out)
{
    char env_name[96], path[128], def[300] = "";
    snprintf(env_name, sizeof(env_name), "CASCADE_%s_METRICS_LISTEN", upper);
    snprintf(path, sizeof(path), "%s.metrics_listen", name);
    default_metrics_addr(out->listen, def, sizeof(def));
    if (pick_string(out->metrics_listen, sizeof(out->metrics_listen), flag, env_name, out->config,
                    path, def, "--metrics-listen") != 0)
        return CASCADE_EINVAL;
    if (!out->metrics_listen[0]) {
        fprintf(stderr,
                "cascade-%s: no default metrics address for --listen %s (it needs a numeric "
                "port of at most 64535); set --metrics-listen host:port, or off\n",
                name, out->listen);
        return CASCADE_EINVAL;
    }
    if (strcasecmp(out->metrics_listen, "off") == 0)
        out->metrics_listen[0] = '\0';
    return 0;
}

/* --max-message-bytes: flag > env > config > 4 MiB. The resolved value is
 * written back to <name>.max_message_bytes, which is also the key the
 * orchestrator reads for its stage channels, so both sides agree. */
static int pick_max_message_bytes(const char *name, const char *flag,
                                  struct cascade_service_opts *out)
{
    char path[128], assignment[160], err[512];
    int v;
    snprintf(path, sizeof(path), "%s.max_message_bytes", name);
    if (pick_int(&v, flag, "CASCADE_MAX_MESSAGE_BYTES", out->config, path,
                 DEFAULT_MAX_MESSAGE_BYTES, MIN_MAX_MESSAGE_BYTES, MAX_MAX_MESSAGE_BYTES,
                 "--max-message-bytes") != 0)
        return CASCADE_EINVAL;
    out->max_message_bytes = (size_t)v;
    snprintf(assignment, sizeof(assignment), "%s=%d", path, v);
    if (cascade_config_set(out->config, assignment, err, sizeof(err)) != 0) {
        fprintf(stderr, "cascade-%s: %s\n", name, err);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* A secret (password, token), first found of: the value given as a flag, a
 * file given as a flag, the value in env_value, a file named by env_file,
 * the value at config cfg_value, a file at config cfg_file. Files hold the
 * secret on their first line. Leaves dst "" when none is set. Config keys
 * may be NULL. */
struct secret_source {
    const char *flag_value, *flag_file;
    const char *env_value, *env_file;
    const char *cfg_value, *cfg_file;
    const char *what_value, *what_file; /* for messages */
};

static int pick_secret(const char *name, const struct secret_source *src, const cascade_config *cfg,
                       char *dst, size_t len)
{
    const char *value = src->flag_value, *file = NULL, *cv = NULL, *cf = NULL;
    char err[600];
    if (!value && src->flag_file)
        file = src->flag_file;
    if (!value && !file)
        value = src->env_value ? getenv(src->env_value) : NULL;
    if ((!value || !value[0]) && !file)
        file = src->env_file ? getenv(src->env_file) : NULL;
    if ((!value || !value[0]) && (!file || !file[0])) {
        if ((src->cfg_value &&
             cascade_config_string(cfg, src->cfg_value, NULL, &cv, err, sizeof(err)) != 0) ||
            (src->cfg_file &&
             cascade_config_string(cfg, src->cfg_file, NULL, &cf, err, sizeof(err)) != 0)) {
            fprintf(stderr, "cascade-%s: %s\n", name, err);
            return CASCADE_EINVAL;
        }
        value = cv;
        file = cf;
    }
    dst[0] = '\0';
    if (value && value[0]) {
        if (strlen(value) >= len) {
            fprintf(stderr, "cascade-%s: %s is longer than %zu characters\n", name, src->what_value,
                    len - 1);
            return CASCADE_EINVAL;
        }
        snprintf(dst, len, "%s", value);
        return 0;
    }
    if (file && file[0] &&
        cascade_redis_read_secret_file(file, src->what_file, dst, len, err, sizeof(err)) != 0) {
        fprintf(stderr, "cascade-%s: %s\n", name, err);
        return CASCADE_EINVAL;
    }
    return 0;
}

/* Redis user and password, and the bearer token the server requires. */
static int pick_credentials(const char *name, const char *f_password, const char *f_password_file,
                            const char *f_user, const char *f_token_file,
                            struct cascade_service_opts *out)
{
    const struct secret_source password = {f_password,
                                           f_password_file,
                                           "CASCADE_REDIS_PASSWORD",
                                           "CASCADE_REDIS_PASSWORD_FILE",
                                           "redis.password",
                                           "redis.password_file",
                                           "the Redis password",
                                           "Redis password file"};
    const struct secret_source token = {
        NULL, f_token_file,      "CASCADE_AUTH_TOKEN", "CASCADE_AUTH_TOKEN_FILE",
        NULL, "auth.token_file", "the auth token",     "auth token file"};
    if (pick_secret(name, &password, out->config, out->redis_password,
                    sizeof(out->redis_password)) != 0 ||
        pick_secret(name, &token, out->config, out->auth_token, sizeof(out->auth_token)) != 0)
        return CASCADE_EINVAL;
    return pick_string(out->redis_user, sizeof(out->redis_user), f_user, "CASCADE_REDIS_USER",
                       out->config, "redis.user", "", "--redis-user");
}

/* The TLS settings: flag, env and config key of each; getopt code
 * TLS_OPT_BASE + index. */
#define TLS_OPT_BASE 1000
#define N_TLS 6
static const struct {
    const char *flag, *env, *key;
} tls_settings[N_TLS] = {
    {"tls-cert", "CASCADE_TLS_CERT", "tls.cert_file"},
    {"tls-key", "CASCADE_TLS_KEY", "tls.key_file"},
    {"tls-client-ca", "CASCADE_TLS_CLIENT_CA", "tls.client_ca_file"},
    {"tls-ca", "CASCADE_TLS_CA", "tls.ca_file"},
    {"tls-client-cert", "CASCADE_TLS_CLIENT_CERT", "tls.client_cert_file"},
    {"tls-client-key", "CASCADE_TLS_CLIENT_KEY", "tls.client_key_file"},
};

/* Resolve the TLS file names (flag > env > config) into out and write them
 * back into the config, so a stage's own channels see them. */
static int pick_tls(const char *name, const char *const flags[N_TLS],
                    struct cascade_service_opts *out)
{
    char *dst[N_TLS] = {out->tls_cert, out->tls_key,         out->tls_client_ca,
                        out->tls_ca,   out->tls_client_cert, out->tls_client_key};
    char what[64], err[1024];
    for (int i = 0; i < N_TLS; i++) {
        snprintf(what, sizeof what, "--%s", tls_settings[i].flag);
        if (pick_string(dst[i], sizeof(out->tls_cert), flags[i], tls_settings[i].env, out->config,
                        tls_settings[i].key, "", what) != 0)
            return CASCADE_EINVAL;
        if (dst[i][0] &&
            config_set_string(out->config, tls_settings[i].key, dst[i], err, sizeof err) != 0) {
            fprintf(stderr, "cascade-%s: %s\n", name, err);
            return CASCADE_EINVAL;
        }
    }
    return 0;
}

/* cascade_service_parse_args; init_log false on a reload, where the
 * logger is already in use by other threads. */
static int parse_args(const char *name, int default_port, const char *extra_usage, int argc,
                      char **argv, struct cascade_service_opts *out, bool init_log)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"listen-unix", required_argument, NULL, 'u'},
        {"redis", required_argument, NULL, 'r'},
        {"namespace", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"model-dir", required_argument, NULL, 'm'},
        {"grace-ms", required_argument, NULL, 'g'},
        {"log-level", required_argument, NULL, 'L'},
        {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"metrics-listen", required_argument, NULL, 'M'},
        {"max-message-bytes", required_argument, NULL, 'B'},
        {"redis-password", required_argument, NULL, 'P'},
        {"redis-password-file", required_argument, NULL, 'F'},
        {"redis-user", required_argument, NULL, 'U'},
        {"auth-token-file", required_argument, NULL, 'T'},
        {"tls-cert", required_argument, NULL, TLS_OPT_BASE + 0},
        {"tls-key", required_argument, NULL, TLS_OPT_BASE + 1},
        {"tls-client-ca", required_argument, NULL, TLS_OPT_BASE + 2},
        {"tls-ca", required_argument, NULL, TLS_OPT_BASE + 3},
        {"tls-client-cert", required_argument, NULL, TLS_OPT_BASE + 4},
        {"tls-client-key", required_argument, NULL, TLS_OPT_BASE + 5},
        {NULL, 0, NULL, 0}};
    const char *f_tls[N_TLS] = {NULL};
    const char *f_config = NULL, *f_listen = NULL, *f_listen_unix = NULL, *f_redis = NULL;
    const char *f_ns = NULL;
    const char *f_threads = NULL, *f_model = NULL, *f_grace = NULL, *f_level = NULL;
    const char *f_metrics = NULL, *f_max_msg = NULL;
    const char *f_password = NULL, *f_password_file = NULL, *f_user = NULL, *f_token_file = NULL;
    const char *sets[MAX_SETS];
    int n_sets = 0, opt, rc = CASCADE_EINVAL, max_md;
    char err[1024], upper[64], env_listen[96], path[128], redis_addr[300], def_listen[64];

    memset(out, 0, sizeof(*out));
    out->name = name;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            f_config = optarg;
            break;
        case 'l':
            f_listen = optarg;
            break;
        case 'u':
            f_listen_unix = optarg;
            break;
        case 'M':
            f_metrics = optarg;
            break;
        case 'r':
            f_redis = optarg;
            break;
        case 'n':
            f_ns = optarg;
            break;
        case 't':
            f_threads = optarg;
            break;
        case 'm':
            f_model = optarg;
            break;
        case 'g':
            f_grace = optarg;
            break;
        case 'B':
            f_max_msg = optarg;
            break;
        case 'P':
            f_password = optarg;
            break;
        case 'F':
            f_password_file = optarg;
            break;
        case 'U':
            f_user = optarg;
            break;
        case 'T':
            f_token_file = optarg;
            break;
        case 'L':
            f_level = optarg;
            break;
        case TLS_OPT_BASE + 0:
        case TLS_OPT_BASE + 1:
        case TLS_OPT_BASE + 2:
        case TLS_OPT_BASE + 3:
        case TLS_OPT_BASE + 4:
        case TLS_OPT_BASE + 5:
            f_tls[opt - TLS_OPT_BASE] = optarg;
            break;
        case 's':
            if (n_sets == MAX_SETS) {
                fprintf(stderr, "cascade-%s: at most %d --set options\n", name, MAX_SETS);
                goto fail;
            }
            sets[n_sets++] = optarg;
            break;
        case 'h':
            print_usage(name, default_port, extra_usage);
            return 1;
        default:
            fprintf(stderr, "cascade-%s: unknown or incomplete option \"%s\" (see --help)\n", name,
                    argv[optind - 1]);
            goto fail;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cascade-%s: unexpected argument \"%s\" (see --help)\n", name,
                argv[optind]);
        goto fail;
    }

    if (!f_config)
        f_config = getenv("CASCADE_CONFIG");
    if (f_config && f_config[0]) {
        out->config = cascade_config_load(f_config, err, sizeof(err));
        if (!out->config) {
            fprintf(stderr, "cascade-%s: %s\n", name, err);
            goto fail;
        }
        snprintf(out->config_path, sizeof(out->config_path), "%s", f_config);
    } else {
        out->config = cascade_config_empty();
    }
    for (int i = 0; i < n_sets; i++) {
        if (cascade_config_set(out->config, sets[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "cascade-%s: %s\n", name, err);
            goto fail;
        }
    }

    upper_copy(upper, sizeof(upper), name);
    snprintf(env_listen, sizeof(env_listen), "CASCADE_%s_LISTEN", upper);
    snprintf(path, sizeof(path), "%s.listen", name);
    snprintf(def_listen, sizeof(def_listen), "127.0.0.1:%d", default_port);
    if (pick_string(out->listen, sizeof(out->listen), f_listen, env_listen, out->config, path,
                    def_listen, "--listen") != 0)
        goto fail;
    if (pick_listen_unix(name, upper, f_listen_unix, out) != 0)
        goto fail;
    if (pick_metrics_listen(name, upper, f_metrics, out) != 0)
        goto fail;
    if (pick_string(redis_addr, sizeof(redis_addr), f_redis, "CASCADE_REDIS", out->config,
                    "redis.addr", "127.0.0.1:6379", "--redis") != 0)
        goto fail;
    if (cascade_redis_parse_addr(redis_addr, out->redis_host, sizeof(out->redis_host),
                                 &out->redis_port) != 0) {
        fprintf(stderr, "cascade-%s: --redis: expected host:port or unix:/path, got \"%s\"\n", name,
                redis_addr);
        goto fail;
    }
    if (pick_credentials(name, f_password, f_password_file, f_user, f_token_file, out) != 0)
        goto fail;
    if (pick_tls(name, f_tls, out) != 0)
        goto fail;
    if (pick_string(out->ns, sizeof(out->ns), f_ns, "CASCADE_NAMESPACE", out->config,
                    "redis.namespace", "cascade", "--namespace") != 0)
        goto fail;
    if (pick_string(out->model_dir, sizeof(out->model_dir), f_model, "CASCADE_MODEL_DIR",
                    out->config, "model_dir", "models", "--model-dir") != 0)
        goto fail;
    /* Stages that read model_dir from the config see the resolved value. */
    if (config_set_string(out->config, "model_dir", out->model_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "cascade-%s: %s\n", name, err);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s.threads", name);
    if (pick_int(&out->threads, f_threads, "CASCADE_THREADS", out->config, path, 0, 0, 256,
                 "--threads") != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s.grace_ms", name);
    if (pick_int(&out->grace_ms, f_grace, NULL, out->config, path, 5000, 0, 600000, "--grace-ms") !=
        0)
        goto fail;
    if (pick_max_message_bytes(name, f_max_msg, out) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s.max_metadata_bytes", name);
    if (pick_int(&max_md, NULL, "CASCADE_MAX_METADATA_BYTES", out->config, path,
                 DEFAULT_MAX_METADATA_BYTES, MIN_MAX_METADATA_BYTES, MAX_MAX_MESSAGE_BYTES,
                 "CASCADE_MAX_METADATA_BYTES") != 0)
        goto fail;
    out->max_metadata_bytes = (size_t)max_md;
    if (!f_level)
        f_level = getenv("CASCADE_LOG_LEVEL");
    out->log_level = CASCADE_LOG_INFO;
    if (f_level && f_level[0] && cascade_log_parse_level(f_level, &out->log_level) != 0) {
        fprintf(stderr,
                "cascade-%s: --log-level: expected debug, info, warn or error, got \"%s\"\n", name,
                f_level);
        goto fail;
    }
    if (init_log)
        cascade_log_init(name, out->log_level);
    return 0;
fail:
    cascade_service_opts_free(out);
    return rc;
}

int cascade_service_parse_args(const char *name, int default_port, const char *extra_usage,
                               int argc, char **argv, struct cascade_service_opts *out)
{
    return parse_args(name, default_port, extra_usage, argc, argv, out, true);
}

void cascade_service_opts_free(struct cascade_service_opts *o)
{
    if (!o)
        return;
    cascade_config_destroy(o->config);
    o->config = NULL;
    /* The secrets should not outlive their use in freed or reused memory. */
    volatile char *p = o->redis_password;
    for (size_t i = 0; i < sizeof(o->redis_password); i++)
        p[i] = '\0';
    p = o->auth_token;
    for (size_t i = 0; i < sizeof(o->auth_token); i++)
        p[i] = '\0';
}

struct cascade_redis_opts cascade_service_redis_opts(const struct cascade_service_opts *o)
{
    struct cascade_redis_opts r = {.host = o->redis_host,
                                   .port = o->redis_port,
                                   .connect_timeout_ms = 200,
                                   .command_timeout_ms = 500,
                                   .user = o->redis_user,
                                   .password = o->redis_password};
    int64_t v;
    char err[256];
    if (cascade_config_int(o->config, "redis.connect_timeout_ms", 200, 1, 60000, &v, err,
                           sizeof(err)) == 0)
        r.connect_timeout_ms = (int)v;
    if (cascade_config_int(o->config, "redis.command_timeout_ms", 500, 1, 60000, &v, err,
                           sizeof(err)) == 0)
        r.command_timeout_ms = (int)v;
    return r;
}

static sigset_t termination_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

void cascade_signals_block(void)
{
    sigset_t set = termination_signals();
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cascade_signals_wait(void)
{
    sigset_t set = termination_signals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

cascade_metrics *cascade_service_metrics(const struct cascade_service_opts *o)
{
    char err[512];
    cascade_metrics *m = cascade_metrics_create();
    if (!m) {
        CASCADE_ERROR(NULL, "out of memory creating the metrics registry");
        return NULL;
    }
    if (!o->metrics_listen[0]) {
        CASCADE_INFO(NULL, "metrics endpoint off (--metrics-listen off)");
        return m;
    }
    int port = cascade_metrics_serve(m, o->metrics_listen, err, sizeof(err));
    if (port < 0) {
        CASCADE_ERROR(NULL, "%s (choose another address with --metrics-listen, or off)", err);
        cascade_metrics_destroy(m);
        return NULL;
    }
    const char *colon = strrchr(o->metrics_listen, ':');
    CASCADE_INFO(NULL, "serving metrics on http://%.*s:%d/metrics",
                 (int)(colon - o->metrics_listen), o->metrics_listen, port);
    return m;
}

/* ---- config hot reload (SIGHUP) ---- */

/* What the serve loop needs to re-read the config: the command line to parse
 * again (so flags, environment and --set resolve as at start), the stage to
 * hand the new config to, and the metrics naming the active config. */
struct reload_ctx {
    const struct cascade_service_stage *stage;
    void *service;
    int argc;
    char **argv;
    struct cascade_service_opts *opts; /* its config is replaced on success */
    const cascade_config *started;     /* the config the stage was created with (kept) */
    /* Replaced configs stay alive until exit: a stage may still borrow
     * strings from the config it was created with. */
    cascade_config *superseded[MAX_RELOADS_KEPT];
    size_t n_superseded;
    cascade_metric_family *info;
    cascade_metric *info_now;
    cascade_metric *reloads_ok, *reloads_rejected;
    char version[128], hash[17];
};

/* Point cascade_config_info at the active config: the old series drops to
 * 0 (the registry cannot delete a series), the new one is 1. */
static void reload_publish(struct reload_ctx *r)
{
    cascade_config_identity(r->opts->config, r->version, sizeof r->version, r->hash,
                            sizeof r->hash);
    const char *labels[2] = {r->hash, r->version};
    cascade_metric_set(r->info_now, 0);
    r->info_now = cascade_metric_get(r->info, labels);
    cascade_metric_set(r->info_now, 1);
}

static void warn_restart(const char *what, const char *was, const char *now)
{
    if (strcmp(was, now) != 0)
        cascade_log_event(CASCADE_LOG_WARN,
                          "config reload: %s changed (\"%s\" -> \"%s\"): needs restart, the "
                          "old value stays in use",
                          what, was, now);
}

static void warn_restart_int(const char *what, long long was, long long now)
{
    if (was != now)
        cascade_log_event(CASCADE_LOG_WARN,
                          "config reload: %s changed (%lld -> %lld): needs restart, the old "
                          "value stays in use",
                          what, was, now);
}

/* Options fixed at start (sockets, threads, credentials, Redis): a change is
 * logged as needing a restart, never silently ignored. Secrets are named,
 * not printed. */
static void report_restart_only(const struct cascade_service_opts *a,
                                const struct cascade_service_opts *b)
{
    warn_restart("listen", a->listen, b->listen);
    warn_restart("listen_unix", a->listen_unix, b->listen_unix);
    warn_restart("metrics_listen", a->metrics_listen, b->metrics_listen);
    warn_restart("redis host", a->redis_host, b->redis_host);
    warn_restart_int("redis port", a->redis_port, b->redis_port);
    warn_restart("redis user", a->redis_user, b->redis_user);
    warn_restart("namespace", a->ns, b->ns);
    warn_restart("model_dir", a->model_dir, b->model_dir);
    warn_restart("tls cert", a->tls_cert, b->tls_cert);
    warn_restart("tls key", a->tls_key, b->tls_key);
    warn_restart("tls client ca", a->tls_client_ca, b->tls_client_ca);
    warn_restart("tls ca", a->tls_ca, b->tls_ca);
    warn_restart("tls client cert", a->tls_client_cert, b->tls_client_cert);
    warn_restart("tls client key", a->tls_client_key, b->tls_client_key);
    warn_restart_int("threads", a->threads, b->threads);
    warn_restart_int("grace_ms", a->grace_ms, b->grace_ms);
    warn_restart_int("max_message_bytes", (long long)a->max_message_bytes,
                     (long long)b->max_message_bytes);
    warn_restart_int("log level", a->log_level, b->log_level);
    if (strcmp(a->redis_password, b->redis_password) != 0)
        cascade_log_event(CASCADE_LOG_WARN,
                          "config reload: the redis password changed: needs restart");
    if (strcmp(a->auth_token, b->auth_token) != 0)
        cascade_log_event(CASCADE_LOG_WARN, "config reload: the auth token changed: needs restart");
}

/* A stage without a reload hook applies nothing live: say so when its
 * section changed. */
static void report_section_changed(const char *name, const cascade_config *a,
                                   const cascade_config *b)
{
    json_t *was = cascade_config_get(a, name), *now = cascade_config_get(b, name);
    if (!(was == NULL && now == NULL) && !(was && now && json_equal(was, now)))
        cascade_log_event(CASCADE_LOG_WARN,
                          "config reload: section \"%s\" changed: cascade-%s applies it only "
                          "at restart",
                          name, name);
}

static void threads_default(const struct cascade_service_stage *stage,
                            struct cascade_service_opts *o)
{
    if (o->threads == 0 && stage->threads_per_core > 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = (int)(cores > 0 ? cores : 1) * stage->threads_per_core;
    }
}

static void reload_reject(struct reload_ctx *r, const char *why)
{
    cascade_metric_inc(r->reloads_rejected);
    cascade_log_event(CASCADE_LOG_ERROR,
                      "config reload rejected: %s; still serving version %s hash %s", why,
                      r->version, r->hash);
}

/* SIGHUP: re-read the config; hand it to the stage; keep it only when every
 * part is valid. The old config keeps serving otherwise. */
static void reload_config(struct reload_ctx *r)
{
    struct cascade_service_opts n = {0};
    char err[1024] = "", version[128], hash[17];
    const char *name = r->stage->name;
    if (!r->opts->config_path[0]) {
        reload_reject(r, "no --config file to re-read");
        return;
    }
    /* Load once for the error text; the parse below reads it again. */
    cascade_config *probe = cascade_config_load(r->opts->config_path, err, sizeof err);
    if (!probe) {
        reload_reject(r, err);
        return;
    }
    cascade_config_destroy(probe);
    if (parse_args(name, r->stage->default_port, NULL, r->argc, r->argv, &n, false) != 0) {
        reload_reject(r, "the options do not resolve (the problem is printed above)");
        return;
    }
    cascade_config_identity(n.config, version, sizeof version, hash, sizeof hash);
    if (strcmp(hash, r->hash) == 0 && strcmp(version, r->version) == 0) {
        cascade_log_event(CASCADE_LOG_INFO, "config reload: unchanged (version %s hash %s)",
                          version, hash);
        goto out;
    }
    if (r->n_superseded == MAX_RELOADS_KEPT) {
        /* Unreachable in practice; refusing beats freeing a borrowed config. */
        reload_reject(r, "too many reloads since start; restart the service");
        goto out;
    }
    threads_default(r->stage, &n);
    if (r->stage->reload && r->stage->reload(r->service, n.config, err, sizeof err) != 0) {
        reload_reject(r, err);
        goto out;
    }
    /* A stage's own section applies at start only (a hook applies what it
     * documents, such as the experiments); compare with the config the
     * stage was created with, not the last reload's. */
    report_section_changed(name, r->started, n.config);
    report_restart_only(r->opts, &n);
    r->superseded[r->n_superseded++] = r->opts->config;
    r->opts->config = n.config;
    n.config = NULL;
    cascade_log_event(CASCADE_LOG_INFO,
                      "config reloaded: version %s hash %s (was version %s hash %s)", version, hash,
                      r->version, r->hash);
    reload_publish(r);
    cascade_metric_inc(r->reloads_ok);
out:
    cascade_service_opts_free(&n);
}

/* A stage's own health (cascade_service_stage.healthy), polled while the
 * server waits for signals. */
struct health_probe {
    bool (*healthy)(void *stage);
    void *stage;
};

#define HEALTH_POLL_MS 250

/* Follow the stage's health: NOT_SERVING while it says it cannot work,
 * SERVING again after, logged on each change. *serving is the state last
 * set; a drain (SIGUSR1) ends the following. */
static void follow_health(cascade_rpc_server *srv, const struct health_probe *h, bool *serving)
{
    bool ok = h->healthy(h->stage);
    if (ok == *serving)
        return;
    if (ok)
        CASCADE_INFO(NULL, "health SERVING: the stage can work again");
    else
        CASCADE_WARN(NULL, "health NOT_SERVING: the stage cannot work (see its log)");
    cascade_rpc_server_set_serving(srv, ok);
    *serving = ok;
}

/* Wait for SIGTERM/SIGINT and return it. SIGHUP before that reloads the
 * config (reload may be NULL: then it is ignored, with a warning). SIGUSR1
 * (a pod's preStop hook, docs/deploy.md) switches health to NOT_SERVING while
 * calls are still served, so load balancers and readiness probes take the
 * server out of rotation before SIGTERM stops it accepting calls. With a
 * health probe (h->healthy set), health follows it every HEALTH_POLL_MS
 * until SIGUSR1. */
static int wait_for_stop(cascade_rpc_server *srv, struct reload_ctx *reload,
                         const struct health_probe *h)
{
    sigset_t set = termination_signals();
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    bool following = h && h->healthy, serving = true;
    const struct timespec poll = {0, HEALTH_POLL_MS * 1000000L};
    if (following)
        follow_health(srv, h, &serving);
    for (;;) {
        int sig = 0;
        if (following) {
            sig = sigtimedwait(&set, NULL, &poll);
            if (sig < 0) {
                if (errno == EAGAIN)
                    follow_health(srv, h, &serving);
                continue;
            }
        } else if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            if (reload)
                reload_config(reload);
            else
                CASCADE_WARN(NULL, "SIGHUP: this process does not reload its config; ignored");
        } else if (sig == SIGUSR1) {
            CASCADE_INFO(NULL, "received SIGUSR1: health NOT_SERVING, still serving calls "
                               "until SIGTERM");
            cascade_rpc_server_set_serving(srv, false);
            following = false;
        } else {
            return sig;
        }
    }
}

/* Serve until SIGTERM/SIGINT; on SIGHUP reload (reload may be NULL). */
static int serve(const struct cascade_service_opts *o, cascade_metrics *metrics,
                 const char *grpc_service_name, const struct cascade_rpc_method *methods,
                 size_t n_methods, void *service, struct reload_ctx *reload,
                 const struct health_probe *health)
{
    char err[512];
    struct cascade_rpc_server_opts so = {
        .listen_addr = o->listen,
        .listen_unix = o->listen_unix,
        .threads = o->threads,
        .max_message_bytes = o->max_message_bytes,
        .max_metadata_bytes = o->max_metadata_bytes,
        .service_name = grpc_service_name,
        .metrics = metrics,
        .auth_token = o->auth_token[0] ? o->auth_token : NULL,
        .tls_cert_file = o->tls_cert,
        .tls_key_file = o->tls_key,
        .tls_client_ca_file = o->tls_client_ca,
    };
    cascade_rpc_server *srv =
        cascade_rpc_server_create(&so, methods, n_methods, service, err, sizeof(err));
    if (!srv) {
        CASCADE_ERROR(NULL, "%s", err);
        return 1;
    }
    if (cascade_rpc_server_start(srv, err, sizeof(err)) != 0) {
        CASCADE_ERROR(NULL, "%s", err);
        cascade_rpc_server_destroy(srv);
        return 1;
    }
    CASCADE_INFO(NULL, "serving %s on %s (port %d), redis %s%s:%d namespace \"%s\"%s%s%s",
                 grpc_service_name, o->listen, cascade_rpc_server_port(srv),
                 cascade_redis_host_is_unix(o->redis_host) ? "unix:" : "", o->redis_host,
                 o->redis_port, o->ns, o->redis_password[0] ? ", redis AUTH" : "",
                 o->auth_token[0] ? ", bearer token required" : "",
                 o->tls_client_ca[0] ? ", TLS with client certificates"
                 : o->tls_cert[0]    ? ", TLS"
                                     : "");
    int sig = wait_for_stop(srv, reload, health);
    CASCADE_INFO(NULL, "received %s: draining (grace %d ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 o->grace_ms);
    cascade_rpc_server_shutdown(srv, o->grace_ms);
    cascade_rpc_server_destroy(srv);
    CASCADE_INFO(NULL, "stopped");
    return 0;
}

int cascade_service_run(const struct cascade_service_opts *o, cascade_metrics *metrics,
                        const char *grpc_service_name, const struct cascade_rpc_method *methods,
                        size_t n_methods, void *service)
{
    return serve(o, metrics, grpc_service_name, methods, n_methods, service, NULL, NULL);
}

int cascade_service_main(const struct cascade_service_stage *stage, int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_redis_pool *redis = NULL;
    void *service = NULL;
    struct reload_ctx *reload = NULL;
    char err[512] = "";
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args(stage->name, stage->default_port, stage->extra_usage, argc,
                                        argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    threads_default(stage, &opts);
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    if (stage->needs_redis) {
        struct cascade_redis_opts ropts = cascade_service_redis_opts(&opts);
        if (!(redis = cascade_redis_pool_create(&ropts))) {
            fprintf(stderr, "cascade-%s: out of memory creating the Redis pool\n", stage->name);
            goto out;
        }
    }
    if (!(service = stage->create(&opts, redis, metrics, err, sizeof err))) {
        fprintf(stderr, "cascade-%s: %s\n", stage->name, err);
        if (stage->create_failed_code)
            code = stage->create_failed_code;
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = stage->methods(&n_methods);
    reload = calloc(1, sizeof *reload);
    if (!reload) {
        fprintf(stderr, "cascade-%s: out of memory\n", stage->name);
        goto out;
    }
    *reload = (struct reload_ctx){
        .stage = stage,
        .service = service,
        .argc = argc,
        .argv = argv,
        .opts = &opts,
        .started = opts.config,
        .info = cascade_metrics_gauge(metrics, "cascade_config_info",
                                      "The active config: 1 for its hash and version, 0 for "
                                      "configs replaced by a reload",
                                      "hash,version")};
    cascade_metric_family *reloads = cascade_metrics_counter(
        metrics, "cascade_config_reloads_total", "SIGHUP config reloads by result", "result");
    reload->reloads_ok = cascade_metric_get(reloads, (const char *const[]){"ok"});
    reload->reloads_rejected = cascade_metric_get(reloads, (const char *const[]){"rejected"});
    reload_publish(reload);
    CASCADE_INFO(NULL, "config version %s hash %s (SIGHUP reloads it)", reload->version,
                 reload->hash);
    struct health_probe health = {stage->healthy, service};
    code = serve(&opts, metrics, stage->grpc_service, methods, n_methods, service, reload, &health);
out:
    stage->destroy(service);
    for (size_t i = 0; reload && i < reload->n_superseded; i++)
        cascade_config_destroy(reload->superseded[i]);
    free(reload);
    cascade_metrics_destroy(metrics);
    cascade_redis_pool_destroy(redis);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
