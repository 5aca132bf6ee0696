#!/usr/bin/env bash
# What reading the online counters costs Rank, and would cost PreRank
# (docs/closed-loop.md, "Online deltas"): a private redis-server on a free
# port, cascade-bench-online_counters at 300 candidates (Rank's input) and
# 2000 (PreRank's), and load's snapshot script over 100000 counter hashes. Usage: scripts/bench/online_counters.sh [ROUNDS]  (default 300)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CASCADE_BIN_DIR:-$REPO/build/bin}"
ROUNDS="${1:-300}"
# shellcheck source=private_redis.sh
source "$REPO/scripts/bench/private_redis.sh"
"$BIN/cascade-bench-online_counters" --redis "127.0.0.1:$PORT" --snapshot-items 100000
echo "uptime: $(uptime)"
for C in 300 2000; do
  "$BIN/cascade-bench-online_counters" --redis "127.0.0.1:$PORT" --candidates "$C" --rounds "$ROUNDS"
done
"$BIN/cascade-bench-online_counters" --redis "127.0.0.1:$PORT" --snapshot-items 100000
echo "uptime: $(uptime)"
