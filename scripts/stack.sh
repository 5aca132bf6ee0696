#!/usr/bin/env bash
# Start, stop or inspect a local Cascade stack: a private redis-server and the
# six services on consecutive loopback ports, with every file (Redis data,
# logs, pid files) in one data directory, so several stacks can run side by
# side with different port bases and data directories. See docs/orchestrator.md.
#
#   scripts/stack.sh start  [options]   start redis + services, wait until all are SERVING
#   scripts/stack.sh stop   [options]   SIGTERM everything, wait, report exit codes
#   scripts/stack.sh status [options]   pid, port, metrics port and health of each process
#   scripts/stack.sh check  [options]   exit 0 when every port the stack needs can be bound
#
# Options:
#   --port-base N       orchestrator port; stages on N+1..N+5 (default 50050)
#   --data-dir DIR      where Redis data, logs and pid files go
#                       (default ${TMPDIR:-/tmp}/cascade-stack-<port-base>)
#   --bin-dir DIR       directory with the cascade-* binaries (default <repo>/build/bin)
#   --config FILE       JSON config passed to every service (default <repo>/config/cascade.json)
#   --redis-port P      port of the private redis-server (default port-base + 9)
#   --model-dir DIR     model directory for the services (default <data-dir>/models)
#   --split-channel C   run recall channel C in its own cascade-recall process on port
#                       N+6 (N+7, ... for more), so it can be stopped alone (repeatable)
#   --consumer          also run cascade-consumer (the closed loop's stream consumer,
#                       docs/closed-loop.md) on port N+8; give it a partition directory
#                       with --set consumer.data_dir=DIR. At most 2 split channels then.
#   --set PATH=VALUE    config override passed to every service (repeatable)
#   --stage-threads N   worker threads of each stage process (recall, filter, prerank,
#                       rank, rerank; passed as --set <stage>.threads=N before the
#                       --set options, which can still override one stage). Default 1:
#                       the six services share this host's cores, and a single worker
#                       polls gRPC and serves without handing calls between threads
#                       (docs/load.md "Sixth round (l)"). 0 = the services' own default,
#                       one per core. The orchestrator keeps its own default.
#   --timeout S         seconds to wait for readiness or shutdown (default 30)
#   --unix              the hops inside the stack go over Unix sockets in the data dir
#                       (redis.sock, <service>.sock): redis-server and every service also
#                       listen there, the services reach Redis and the orchestrator its
#                       stages through them, skipping the loopback TCP stack. The TCP
#                       ports stay up (health checks, clients). Default: TCP only.
#   --redis-password-file FILE
#                       start redis-server with requirepass (first line of FILE) and give
#                       the services the same file; the password may also come from env
#                       CASCADE_REDIS_PASSWORD or CASCADE_REDIS_PASSWORD_FILE. It never
#                       goes on a command line: redis-server reads it from a mode-600
#                       config file in the data dir, redis-cli from REDISCLI_AUTH.
#   --auth-token-file FILE
#                       every service requires "authorization: Bearer <token>" (first line
#                       of FILE; or env CASCADE_AUTH_TOKEN / CASCADE_AUTH_TOKEN_FILE) and
#                       the orchestrator sends it to the stages. Default: no token.
#   --tls-cert FILE --tls-key FILE --tls-ca FILE
#                       every service serves TLS only with this PEM certificate (one
#                       certificate for 127.0.0.1 serves the whole stack) and key; the
#                       orchestrator and stack.sh's health checks trust the CA FILE.
#   --tls-client-ca FILE --tls-client-cert FILE --tls-client-key FILE
#                       also require client certificates signed by the client CA (mTLS);
#                       the orchestrator and the health checks present this certificate.
#                       All six are passed as env CASCADE_TLS_* (docs/stages.md "TLS") and
#                       recorded in the data dir's stack.env for status. Default plaintext.
#
# Ports: orchestrator N, recall N+1, filter N+2, prerank N+3, rank N+4,
# rerank N+5, split recall channels N+6.., consumer N+8, redis N+9. Keep bases 10 apart.
# Every service also serves Prometheus /metrics on its port + 1000
# (N+1000..N+1008; docs/metrics.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG="stack.sh"
METRICS_OFFSET=1000 # every service serves /metrics on its port + 1000 (common/service.h)

die() { echo "$PROG: $*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------- options

COMMAND="${1:-}"
[ -n "$COMMAND" ] || { usage >&2; exit 2; }
shift
case "$COMMAND" in
  start|stop|status|check) ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "$PROG: unknown command \"$COMMAND\" (expected start, stop, status or check)" >&2; exit 2 ;;
esac

PORT_BASE=50050
DATA_DIR=""
BIN_DIR="$REPO/build/bin"
CONFIG="$REPO/config/cascade.json"
REDIS_PORT=""
MODEL_DIR=""
TIMEOUT_S=30
SPLIT=()
SETS=()
STAGE_THREADS=1
REDIS_PASSWORD_FILE="${CASCADE_REDIS_PASSWORD_FILE:-}"
AUTH_TOKEN_FILE=""
TLS_ARGS=()
CONSUMER=0
UNIX=0

need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --port-base) need_arg "$@"; PORT_BASE="$2"; shift 2 ;;
    --data-dir) need_arg "$@"; DATA_DIR="$2"; shift 2 ;;
    --bin-dir) need_arg "$@"; BIN_DIR="$2"; shift 2 ;;
    --config) need_arg "$@"; CONFIG="$2"; shift 2 ;;
    --redis-port) need_arg "$@"; REDIS_PORT="$2"; shift 2 ;;
    --model-dir) need_arg "$@"; MODEL_DIR="$2"; shift 2 ;;
    --split-channel) need_arg "$@"; SPLIT+=("$2"); shift 2 ;;
    --consumer) CONSUMER=1; shift ;;
    --unix) UNIX=1; shift ;;
    --set) need_arg "$@"; SETS+=("--set" "$2"); shift 2 ;;
    --stage-threads) need_arg "$@"; STAGE_THREADS="$2"; shift 2 ;;
    --timeout) need_arg "$@"; TIMEOUT_S="$2"; shift 2 ;;
    --redis-password-file) need_arg "$@"; REDIS_PASSWORD_FILE="$2"; shift 2 ;;
    --auth-token-file) need_arg "$@"; AUTH_TOKEN_FILE="$2"; shift 2 ;;
    --tls-cert|--tls-key|--tls-ca|--tls-client-ca|--tls-client-cert|--tls-client-key)
      need_arg "$@"; TLS_ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$PROG: unknown option \"$1\" (see $PROG --help)" >&2; exit 2 ;;
  esac
done

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
is_port "$PORT_BASE" && [ "$PORT_BASE" -le 64526 ] || die "--port-base: expected a port in 1..64526 (metrics ports go up to base + 1009), got \"$PORT_BASE\""
[[ "$TIMEOUT_S" =~ ^[0-9]+$ ]] || die "--timeout: expected seconds, got \"$TIMEOUT_S\""
[[ "$STAGE_THREADS" =~ ^[0-9]+$ ]] && [ "$STAGE_THREADS" -le 256 ] ||
  die "--stage-threads: expected 0..256, got \"$STAGE_THREADS\""
DATA_DIR="${DATA_DIR:-${TMPDIR:-/tmp}/cascade-stack-$PORT_BASE}"
REDIS_PORT="${REDIS_PORT:-$((PORT_BASE + 9))}"
is_port "$REDIS_PORT" || die "--redis-port: expected a port, got \"$REDIS_PORT\""
[ ${#SPLIT[@]} -le 3 ] || die "--split-channel: at most 3 channels (ports N+6..N+8)"

# Process table: name, binary, port. The orchestrator comes last so it starts
# after (and stops before) the stages it calls.
names=(recall filter prerank rank rerank)
bins=(recall filter prerank rank rerank)
ports=($((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) $((PORT_BASE + 4)) $((PORT_BASE + 5)))
for i in "${!SPLIT[@]}"; do
  [[ "${SPLIT[$i]}" =~ ^[a-z0-9_]+$ ]] || die "--split-channel: bad channel name \"${SPLIT[$i]}\""
  names+=("recall-${SPLIT[$i]}"); bins+=(recall); ports+=($((PORT_BASE + 6 + i)))
done
if [ "$CONSUMER" = 1 ]; then
  [ ${#SPLIT[@]} -le 2 ] || die "--consumer takes port N+8: at most 2 --split-channel with it"
  names+=(consumer); bins+=(consumer); ports+=($((PORT_BASE + 8)))
fi
names+=(orchestrator); bins+=(orchestrator); ports+=("$PORT_BASE")

# ---------------------------------------------------------------- helpers

# The Redis password (CASCADE_REDIS_PASSWORD, else the first line of the
# password file), or nothing when none is configured.
redis_password() {
  if [ -n "${CASCADE_REDIS_PASSWORD:-}" ]; then
    printf '%s' "$CASCADE_REDIS_PASSWORD"
  elif [ -n "$REDIS_PASSWORD_FILE" ]; then
    [ -r "$REDIS_PASSWORD_FILE" ] || die "redis password file $REDIS_PASSWORD_FILE cannot be read"
    head -n 1 "$REDIS_PASSWORD_FILE" | tr -d '\r\n'
  fi
}

# Write a mode-600 redis.conf with requirepass (quoted for Redis's config
# parser) and export REDISCLI_AUTH so redis-cli authenticates without argv.
setup_redis_auth() {
  local pw="$1" quoted
  quoted="${pw//\\/\\\\}"
  quoted="${quoted//\"/\\\"}"
  (umask 077 && printf 'requirepass "%s"\n' "$quoted" >"$DATA_DIR/redis-auth.conf")
  export REDISCLI_AUTH="$pw"
}

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { [ -f "$DATA_DIR/$1.pid" ] && cat "$DATA_DIR/$1.pid" || true; }
now_s() { date +%s; }

# Run a command detached (own session) with output to <name>.log. The wrapper
# writes the command's pid to <name>.pid and, when it ends, its exit status to
# <name>.exit, so `stop` can report how each process ended.
launch() {
  local name="$1"; shift
  rm -f "$DATA_DIR/$name.pid" "$DATA_DIR/$name.exit"
  setsid bash -c '
    dir="$1"; name="$2"; shift 2
    "$@" >>"$dir/$name.log" 2>&1 </dev/null &
    child=$!
    echo "$child" >"$dir/$name.pid.tmp" && mv "$dir/$name.pid.tmp" "$dir/$name.pid"
    trap "" TERM INT
    wait "$child"; status=$?
    echo "$status" >"$dir/$name.exit"
  ' stack-wrapper "$DATA_DIR" "$name" "$@" </dev/null >/dev/null 2>&1 &
  local deadline=$(( $(now_s) + TIMEOUT_S ))
  until [ -s "$DATA_DIR/$name.pid" ]; do
    [ "$(now_s)" -lt "$deadline" ] || die "$name: did not start"
    sleep 0.05
  done
}

tail_log() { echo "--- last lines of $DATA_DIR/$1.log:" >&2; tail -n 15 "$DATA_DIR/$1.log" >&2 || true; }

# Poll until `check` succeeds; fail early when the process died.
# True when the Redis on port $1 answers PING with PONG (not LOADING).
redis_pong() {
  [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

# True when process $1 holds the listening socket on port $2: an answer on
# the port may come from another program that took it between the port check
# and our bind (ours then fails to bind and exits). Skipped without ss.
owns_port() {
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$1,"
}

# Ready: our redis answers PONG on $1 / our service $1 is SERVING on port $2.
redis_ready() { redis_pong "$1" && owns_port "$(read_pid redis)" "$1"; }
service_ready() { health "$2" && owns_port "$(read_pid "$1")" "$2"; }

wait_ready() {
  local name="$1"; shift
  local deadline=$(( $(now_s) + TIMEOUT_S ))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$(read_pid "$name")"; then
      echo "$PROG: $name exited during start-up (status $(cat "$DATA_DIR/$name.exit" 2>/dev/null || echo '?'))" >&2
      tail_log "$name"; return 1
    fi
    if [ "$(now_s)" -ge "$deadline" ]; then
      echo "$PROG: $name not ready after ${TIMEOUT_S}s" >&2; tail_log "$name"; return 1
    fi
    sleep 0.1
  done
}

# --tls-*: export each file (absolute path) as CASCADE_TLS_*, which every
# service, and cascade-cli for the health checks, reads.
setup_tls() {
  local i flag file var
  for ((i = 0; i < ${#TLS_ARGS[@]}; i += 2)); do
    flag="${TLS_ARGS[$i]}"; file="${TLS_ARGS[$((i + 1))]}"
    [ -r "$file" ] || die "$flag $file cannot be read"
    file="$(cd "$(dirname "$file")" && pwd)/$(basename "$file")"
    var="CASCADE_$(printf '%s' "${flag#--}" | tr 'a-z-' 'A-Z_')"
    export "$var=$file"
  done
}

health() { "$BIN_DIR/cascade-cli" health --addr "127.0.0.1:$1" --timeout-ms 1000; }

# Stop one process: SIGTERM, wait for its exit file (or its death).
stop_one() {
  local name="$1" pid
  pid="$(read_pid "$name")"
  [ -n "$pid" ] || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( $(now_s) + TIMEOUT_S ))
    while pid_alive "$pid"; do
      if [ "$(now_s)" -ge "$deadline" ]; then
        echo "$PROG: $name (pid $pid) ignored SIGTERM for ${TIMEOUT_S}s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.05
    done
  fi
  local deadline=$(( $(now_s) + 5 ))
  until [ -f "$DATA_DIR/$name.exit" ] || [ "$(now_s)" -ge "$deadline" ]; do sleep 0.05; done
  local status; status="$(cat "$DATA_DIR/$name.exit" 2>/dev/null || echo '?')"
  rm -f "$DATA_DIR/$name.pid"
  if [ "$status" != 0 ]; then
    echo "$PROG: $name exited with status $status (see $DATA_DIR/$name.log)" >&2
    return 1
  fi
  echo "stopped $name"
}

# Names recorded by `start` (the split channels may differ from this call's flags).
recorded_names() {
  if [ -f "$DATA_DIR/stack.env" ]; then
    # shellcheck disable=SC1091
    (. "$DATA_DIR/stack.env"; echo "$STACK_NAMES")
  fi
}

# ---------------------------------------------------------------- commands

cmd_stop() {
  local failed=0 list name
  [ -d "$DATA_DIR" ] || { echo "$PROG: no stack in $DATA_DIR"; return 0; }
  list="$(recorded_names)"
  [ -n "$list" ] || list="${names[*]}"
  # Orchestrator first (it calls the others), Redis last.
  stop_one orchestrator || failed=1
  for name in $list; do
    [ "$name" = orchestrator ] || stop_one "$name" || failed=1
  done
  stop_one redis || failed=1
  return "$failed"
}

# Every port the stack listens on (redis, services, their metrics) that
# cannot be bound right now, as "port(name)" words; empty when all can.
# A port can be taken by another program or, in the ephemeral range
# (32768-60999 on Linux), by an outgoing connection still in TIME_WAIT.
busy_ports() {
  command -v python3 >/dev/null || return 0
  local specs=("$REDIS_PORT:redis") i
  for i in "${!names[@]}"; do
    specs+=("${ports[$i]}:${names[$i]}" "$((ports[$i] + METRICS_OFFSET)):${names[$i]}-metrics")
  done
  python3 - "${specs[@]}" <<'PY'
import socket, sys
busy = []
for spec in sys.argv[1:]:
    port, name = spec.split(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError:
        busy.append(f"{port}({name})")
    finally:
        s.close()
print(" ".join(busy))
PY
}

cmd_check() {
  local busy
  busy="$(busy_ports)"
  [ -z "$busy" ] || { echo "$PROG: ports in use for base $PORT_BASE: $busy" >&2; return 1; }
}

# While starting, any failure stops whatever was started.
STARTING=0
on_exit() {
  if [ "$STARTING" = 1 ]; then
    echo "$PROG: start failed; stopping what was started" >&2
    STARTING=0
    cmd_stop >/dev/null 2>&1 || true
  fi
}

cmd_start() {
  command -v redis-server >/dev/null || die "redis-server not found (run scripts/install-deps.sh)"
  for b in cli "${bins[@]}"; do
    [ -x "$BIN_DIR/cascade-$b" ] || die "$BIN_DIR/cascade-$b not found (build first: cmake --build build)"
  done
  [ -f "$CONFIG" ] || die "config $CONFIG not found"
  mkdir -p "$DATA_DIR"
  DATA_DIR="$(cd "$DATA_DIR" && pwd)"
  MODEL_DIR="${MODEL_DIR:-$DATA_DIR/models}"
  mkdir -p "$MODEL_DIR"
  for name in redis "${names[@]}"; do
    if pid_alive "$(read_pid "$name")"; then
      die "$name is already running from $DATA_DIR (pid $(read_pid "$name")); run '$PROG stop --data-dir $DATA_DIR' first"
    fi
  done
  local busy
  busy="$(busy_ports)"
  [ -z "$busy" ] || die "cannot listen on $busy: in use by another program or by a connection still in TIME_WAIT; choose another --port-base (e.g. 20050, outside the ephemeral range)"
  setup_tls
  if [ "$UNIX" = 1 ]; then # sockaddr_un holds 107 path bytes
    local longest=0 n
    for n in redis "${names[@]}"; do [ ${#n} -le $longest ] || longest=${#n}; done
    [ $(( ${#DATA_DIR} + longest + 6 )) -le 107 ] ||
      die "--unix: data dir $DATA_DIR is too long for a Unix socket path (at most $((101 - longest)) characters)"
  fi
  cat >"$DATA_DIR/stack.env" <<EOF
STACK_PORT_BASE=$PORT_BASE
STACK_REDIS_PORT=$REDIS_PORT
STACK_BIN_DIR=$BIN_DIR
STACK_NAMES="${names[*]}"
STACK_PORTS="${ports[*]}"
EOF
  local v
  for v in CASCADE_TLS_CERT CASCADE_TLS_KEY CASCADE_TLS_CA CASCADE_TLS_CLIENT_CA \
           CASCADE_TLS_CLIENT_CERT CASCADE_TLS_CLIENT_KEY; do
    [ -z "${!v:-}" ] || printf 'export %s=%q\n' "$v" "${!v}" >>"$DATA_DIR/stack.env"
  done

  local password redis_conf=()
  [ -z "$REDIS_PASSWORD_FILE" ] || [ -r "$REDIS_PASSWORD_FILE" ] ||
    die "redis password file $REDIS_PASSWORD_FILE cannot be read"
  password="$(redis_password)"
  rm -f "$DATA_DIR/redis-auth.conf"
  if [ -n "$password" ]; then
    setup_redis_auth "$password"
    redis_conf=("$DATA_DIR/redis-auth.conf")
    # The services read the password from the environment, not argv.
    [ -n "${CASCADE_REDIS_PASSWORD:-}" ] || export CASCADE_REDIS_PASSWORD_FILE="$REDIS_PASSWORD_FILE"
  fi
  if [ -n "$AUTH_TOKEN_FILE" ]; then
    [ -r "$AUTH_TOKEN_FILE" ] || die "--auth-token-file $AUTH_TOKEN_FILE cannot be read"
    export CASCADE_AUTH_TOKEN_FILE="$AUTH_TOKEN_FILE"
  fi

  STARTING=1
  trap on_exit EXIT
  # Redis keeps its files in the data dir and saves them on shutdown, so a
  # stopped stack restarts with its data.
  local redis_unix=() redis_addr="127.0.0.1:$REDIS_PORT"
  if [ "$UNIX" = 1 ]; then
    redis_unix=(--unixsocket "$DATA_DIR/redis.sock" --unixsocketperm 700)
    redis_addr="unix:$DATA_DIR/redis.sock"
  fi
  launch redis redis-server ${redis_conf[@]+"${redis_conf[@]}"} --port "$REDIS_PORT" \
    --bind 127.0.0.1 --dir "$DATA_DIR" ${redis_unix[@]+"${redis_unix[@]}"} \
    --dbfilename dump.rdb --save 3600 1 --appendonly no --protected-mode yes
  # PONG exactly: while it loads the saved data Redis answers "LOADING ..."
  # (and redis-cli still exits 0), and every command but PING would fail.
  wait_ready redis redis_ready "$REDIS_PORT"

  local common=(--config "$CONFIG" --redis "$redis_addr" --model-dir "$MODEL_DIR")
  if [ "$STAGE_THREADS" != 0 ]; then
    for s in recall filter prerank rank rerank; do
      common+=(--set "$s.threads=$STAGE_THREADS")
    done
  fi
  # The orchestrator reaches each stage at its TCP port, or with --unix at
  # the stage's socket in the data dir.
  local orch_sets=() stage
  for i in "${!names[@]}"; do
    stage="${names[$i]}"
    [ "$stage" != orchestrator ] && [ "$stage" != consumer ] || continue
    case "$stage" in recall-*) stage="recall_${stage#recall-}" ;; esac
    if [ "$UNIX" = 1 ]; then
      orch_sets+=(--set "orchestrator.endpoints.$stage=unix:$DATA_DIR/${names[$i]}.sock")
    else
      orch_sets+=(--set "orchestrator.endpoints.$stage=127.0.0.1:${ports[$i]}")
    fi
  done
  for i in "${!names[@]}"; do
    local extra=()
    [ "${names[$i]}" = orchestrator ] && extra=("${orch_sets[@]}")
    [ "$UNIX" = 1 ] && extra+=(--listen-unix "$DATA_DIR/${names[$i]}.sock")
    launch "${names[$i]}" "$BIN_DIR/cascade-${bins[$i]}" "${common[@]}" \
      --listen "127.0.0.1:${ports[$i]}" ${SETS[@]+"${SETS[@]}"} ${extra[@]+"${extra[@]}"}
  done
  for i in "${!names[@]}"; do
    wait_ready "${names[$i]}" service_ready "${names[$i]}" "${ports[$i]}"
  done
  STARTING=0
  echo "cascade stack up in $DATA_DIR"
  echo "  redis        127.0.0.1:$REDIS_PORT"
  [ "$UNIX" = 1 ] && echo "  unix sockets $DATA_DIR/{redis,<service>}.sock"
  for i in "${!names[@]}"; do
    printf '  %-12s 127.0.0.1:%s  (metrics http://127.0.0.1:%s/metrics)\n' "${names[$i]}" \
      "${ports[$i]}" "$((ports[i] + METRICS_OFFSET))"
  done
  echo "query: $BIN_DIR/cascade-cli recommend --addr 127.0.0.1:$PORT_BASE --user <id> --count 10"
  echo "stop:  $0 stop --data-dir $DATA_DIR"
}

cmd_status() {
  [ -f "$DATA_DIR/stack.env" ] || die "no stack in $DATA_DIR"
  # shellcheck disable=SC1091
  . "$DATA_DIR/stack.env"
  local all_ok=0 pid state password
  password="$(redis_password)"
  [ -z "$password" ] || export REDISCLI_AUTH="$password"
  read -r -a st_names <<<"$STACK_NAMES"
  read -r -a st_ports <<<"$STACK_PORTS"
  pid="$(read_pid redis)"
  if pid_alive "$pid" && redis-cli -p "$STACK_REDIS_PORT" ping >/dev/null 2>&1; then state=PONG; else state=DOWN; all_ok=1; fi
  printf '%-14s %-6s %-8s %-8s %s\n' name port metrics pid state
  printf '%-14s %-6s %-8s %-8s %s\n' redis "$STACK_REDIS_PORT" - "${pid:--}" "$state"
  for i in "${!st_names[@]}"; do
    pid="$(read_pid "${st_names[$i]}")"
    if ! pid_alive "$pid"; then state=DOWN; all_ok=1
    else state="$("$STACK_BIN_DIR/cascade-cli" health --addr "127.0.0.1:${st_ports[$i]}" --timeout-ms 1000 2>/dev/null || true)"
         [ "$state" = SERVING ] || { state="${state:-UNREACHABLE}"; all_ok=1; }
    fi
    printf '%-14s %-6s %-8s %-8s %s\n' "${st_names[$i]}" "${st_ports[$i]}" \
      "$((st_ports[i] + METRICS_OFFSET))" "${pid:--}" "$state"
  done
  return "$all_ok"
}

case "$COMMAND" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  check) cmd_check ;;
esac
