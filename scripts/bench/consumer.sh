#!/usr/bin/env bash
# Stream consumer throughput (docs/closed-loop.md): a private redis-server on a
# free port, cascade-bench-consumer draining N events (+ N/10 serve records of
# 10 items), without and with day partitions. Usage:
#   scripts/bench/consumer.sh [N] [BATCH]     (default 100000 200)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CASCADE_BIN_DIR:-$REPO/build/bin}"
N="${1:-100000}"
BATCH="${2:-200}"
DIR="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" --daemonize yes \
  --pidfile "$DIR/redis.pid" >/dev/null
trap 'kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.05; done
echo "uptime: $(uptime)"
"$BIN/cascade-bench-consumer" --redis "127.0.0.1:$PORT" --events "$N" --batch "$BATCH" --ns plain
"$BIN/cascade-bench-consumer" --redis "127.0.0.1:$PORT" --events "$N" --batch "$BATCH" --ns parts \
  --data-dir "$DIR/data"
