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
# shellcheck source=private_redis.sh
source "$REPO/scripts/bench/private_redis.sh"
echo "uptime: $(uptime)"
"$BIN/cascade-bench-consumer" --redis "127.0.0.1:$PORT" --events "$N" --batch "$BATCH" --ns plain
"$BIN/cascade-bench-consumer" --redis "127.0.0.1:$PORT" --events "$N" --batch "$BATCH" --ns parts \
  --data-dir "$DIR/data"
