/* Unit-test fixtures: a private redis-server on a free loopback port (spawned
 * with fork/exec, readiness polled with PING, never slept on), and temporary
 * directories. */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define READY_POLLS 1000       /* × READY_POLL_NS = 10 s at most */
#define READY_POLL_NS 10000000 /* 10 ms between PINGs */
#define START_ATTEMPTS 3       /* another process may grab the free port first */

/* A TCP socket bound to a free port on 127.0.0.1 (not listening); returns
 * the fd with the port in *port, or -1. */
static int bind_any_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int test_free_port(void)
{
    int port = -1, fd = bind_any_loopback(&port);
    if (fd >= 0)
        close(fd);
    return fd >= 0 ? port : -1;
}

int test_dead_port(void)
{
    /* Bound and never listened on: the kernel answers a connection with a
     * reset, and no other process can bind the port while the socket is
     * open. Kept open on purpose until the process exits. */
    int port = -1;
    return bind_any_loopback(&port) >= 0 ? port : -1;
}

void test_violation(struct test_violations *v, const char *fmt, ...)
{
    atomic_fetch_add(&v->count, 1);
    if (atomic_flag_test_and_set(&v->first_taken))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->first, sizeof v->first, fmt, ap);
    va_end(ap);
}

int test_write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -1;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *test_tempdir(char *buf, size_t len)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(buf, len, "%s/cascade-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= len)
        return NULL;
    return mkdtemp(buf);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void test_rmdir(const char *dir)
{
    if (dir && *dir)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static pid_t spawn_redis(int port, const char *dir, const char *password)
{
    char port_arg[16], socket_arg[300];
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    snprintf(socket_arg, sizeof(socket_arg), "%s/redis.sock", dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: die with the test process so no server outlives a crashed test. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
    }
    const char *argv[] = {"redis-server", "--port",        port_arg, "--bind",
                          "127.0.0.1",    "--save",        "",       "--appendonly",
                          "no",           "--dir",         dir,      "--unixsocket",
                          socket_arg,     "--requirepass", password, NULL};
    if (!password[0])
        argv[13] = NULL; /* no --requirepass */
    execvp("redis-server", (char *const *)argv);
    _exit(127);
}

/* True when the server on port answers and is the process pid: INFO's
 * process_id, so a redis-server of another test that took the same port
 * between the probe and our bind is never mistaken for ours. */
static int answers_as(pid_t pid, int port, const char *password)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *rep = NULL;
    int ok = 0;
    if (!c || c->err)
        goto out;
    redisSetTimeout(c, tv);
    if (password[0]) {
        rep = redisCommand(c, "AUTH %s", password);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto out;
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "INFO server");
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *field = strstr(rep->str, "\nprocess_id:");
        ok = field && strtol(field + strlen("\nprocess_id:"), NULL, 10) == (long)pid;
    }
out:
    if (rep)
        freeReplyObject(rep);
    if (c)
        redisFree(c);
    return ok;
}

/* Poll until our server answers; fails early if the process exits (e.g. its
 * port was taken: the caller then tries another). */
static int wait_ready(pid_t pid, int port, const char *password)
{
    struct timespec pause = {0, READY_POLL_NS};
    for (int i = 0; i < READY_POLLS; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
        if (answers_as(pid, port, password))
            return 0;
        nanosleep(&pause, NULL);
    }
    return -1;
}

static void kill_and_wait(pid_t pid, int sig)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Start on r->port in r->dir; returns 0 or -1 (process reaped on failure). */
static int start_on_port(struct test_redis *r)
{
    r->pid = spawn_redis(r->port, r->dir, r->password);
    if (r->pid < 0) {
        r->pid = 0;
        return -1;
    }
    if (wait_ready(r->pid, r->port, r->password) != 0) {
        kill_and_wait(r->pid, SIGKILL);
        r->pid = 0;
        return -1;
    }
    return 0;
}

int test_redis_start(struct test_redis *r)
{
    return test_redis_start_auth(r, "");
}

int test_redis_start_auth(struct test_redis *r, const char *password)
{
    memset(r, 0, sizeof(*r));
    if (strlen(password) >= sizeof(r->password))
        return -1;
    snprintf(r->password, sizeof(r->password), "%s", password);
    if (!test_tempdir(r->dir, sizeof(r->dir))) {
        r->dir[0] = '\0';
        return -1;
    }
    snprintf(r->socket, sizeof(r->socket), "%s/redis.sock", r->dir);
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        r->port = test_free_port();
        if (r->port > 0 && start_on_port(r) == 0)
            return 0;
    }
    fprintf(stderr, "test_redis_start: redis-server did not come up (is it on PATH?)\n");
    test_rmdir(r->dir);
    r->dir[0] = '\0';
    return -1;
}

int test_redis_restart(struct test_redis *r)
{
    kill_and_wait(r->pid, SIGKILL);
    r->pid = 0;
    return start_on_port(r);
}

void test_redis_stop(struct test_redis *r)
{
    if (!r)
        return;
    kill_and_wait(r->pid, SIGTERM);
    r->pid = 0;
    if (r->dir[0])
        test_rmdir(r->dir);
    r->dir[0] = '\0';
}

int test_redis_fixture_start(struct test_redis_fixture *f)
{
    memset(f, 0, sizeof(*f));
    if (test_redis_start(&f->server) != 0)
        return -1;
    struct cascade_redis_opts o = {.host = "127.0.0.1",
                                   .port = f->server.port,
                                   .connect_timeout_ms = 1000,
                                   .command_timeout_ms = 2000};
    f->pool = cascade_redis_pool_create(&o);
    f->conn = f->pool ? cascade_redis_pool_get(f->pool) : NULL;
    if (!f->conn) {
        test_redis_fixture_stop(f);
        return -1;
    }
    return 0;
}

void test_redis_fixture_stop(struct test_redis_fixture *f)
{
    cascade_redis_pool_destroy(f->pool);
    f->pool = NULL;
    f->conn = NULL;
    test_redis_stop(&f->server);
}

int test_redis_group_setup(void **state)
{
    struct test_redis_fixture *f = calloc(1, sizeof(*f));
    *state = f;
    return f && test_redis_fixture_start(f) == 0 ? 0 : -1;
}

int test_redis_group_teardown(void **state)
{
    struct test_redis_fixture *f = *state;
    if (f)
        test_redis_fixture_stop(f);
    free(f);
    *state = NULL;
    return 0;
}

long long test_redis_command_calls(cascade_redis *r, const char *command)
{
    redisReply *rep = NULL;
    char field[64];
    long long calls = 0;
    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    if (cascade_redis_command(r, &rep, "INFO commandstats") != 0)
        return -1;
    const char *p = strstr(rep->str, field);
    if (p)
        calls = atoll(p + strlen(field));
    freeReplyObject(rep);
    return calls;
}

cascade_redis_pool *test_redis_dead_pool(void)
{
    struct cascade_redis_opts o = {.host = "127.0.0.1",
                                   .port = test_dead_port(),
                                   .connect_timeout_ms = 500,
                                   .command_timeout_ms = 500};
    return cascade_redis_pool_create(&o);
}
