#!/usr/bin/env bash
# Stage hop overhead (issue 15, item 4): the same ReRankRequest (300 ranked
# candidates with attributes, count 10) through the ReRank stage's RPC and
# through a bare gRPC C-core echo server (cascade-bench-hop --echo), both on
# one server thread, one client thread, alternating rounds in one run. Prints
# both latency distributions and the ratio of the medians (target <= 1.5x).
# Free loopback ports; everything stops at the end. Extra args go to the client
# (--candidates N --count N --calls N --rounds N).
# Usage: scripts/bench/hop.sh [client options]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$(pwd)/build/bin"
for exe in cascade-rerank cascade-bench-hop cascade-cli; do
  [ -x "$BIN/$exe" ] || { echo "hop.sh: $BIN/$exe missing; build first (cmake --build build)" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/cascade-hop.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
STAGE_PORT=$(free_port); METRICS_PORT=$(free_port)
"$BIN/cascade-rerank" --listen 127.0.0.1:$STAGE_PORT --metrics-listen 127.0.0.1:$METRICS_PORT \
  --threads 1 --config config/cascade.json --log-level warn >"$DIR/rerank.log" 2>&1 &
PIDS+=($!)
"$BIN/cascade-bench-hop" --echo --listen 127.0.0.1:0 --port-file "$DIR/echo.port" >"$DIR/echo.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  "$BIN/cascade-cli" health --addr 127.0.0.1:$STAGE_PORT --timeout-ms 200 >/dev/null 2>&1 && [ -s "$DIR/echo.port" ] && break
  sleep 0.1
done
"$BIN/cascade-cli" health --addr 127.0.0.1:$STAGE_PORT --timeout-ms 1000 >/dev/null || { cat "$DIR/rerank.log" >&2; exit 1; }
[ -s "$DIR/echo.port" ] || { cat "$DIR/echo.log" >&2; exit 1; }
echo "load: $(uptime | sed 's/.*load average: //')"
"$BIN/cascade-bench-hop" --stage 127.0.0.1:$STAGE_PORT --echo-addr 127.0.0.1:"$(cat "$DIR/echo.port")" "$@"
echo "load: $(uptime | sed 's/.*load average: //')"
