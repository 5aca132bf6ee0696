#!/usr/bin/env bash
# Recommend latency benchmark on a private stack: starts redis-server and the
# six services (port base 45050 — metrics on 46050+ — data in a temp dir), generates and builds a
# world and trains every model, warms up, then runs cascade-bench-recommend with 1 and 4 client
# threads and prints the figures that go in README. With --rates "R1 R2 ...", it then drives
# Recommend open loop with cascade-load at each rate for --duration (default 20s) and prints
# the saturation curve: offered rate, achieved rate, p50, p99, errors, degraded answers.
# Stops everything at the end.
# Usage: scripts/bench/recommend.sh [--users N] [--items N] [--events N] [--requests N]
#        [--rates "50 100 200"] [--duration 20s] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
USERS=5000; ITEMS=2000; EVENTS=300000; REQUESTS=500; BASE=45050
RATES=""; DURATION=20s; CONCURRENCY=64
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --items) ITEMS="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --requests) REQUESTS="$2"; shift 2 ;;
    --rates) RATES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    *) echo "recommend.sh: unknown option \"$1\"" >&2; exit 2 ;;
  esac
done
[ -x "$BIN/cascade-bench-recommend" ] || { echo "recommend.sh: build first (cmake --build build)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/cascade-bench.XXXXXX)
cleanup() { bash scripts/stack.sh stop --port-base $BASE --data-dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
bash scripts/stack.sh start --port-base $BASE --data-dir "$DIR" --bin-dir "$BIN" >/dev/null
"$BIN/cascade-datagen" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 7 --quiet --out "$DIR/world"
# Exit 3/4 = the gate kept a model back: the stack serves what is published.
gated() { local rc=0; "$@" || rc=$?; [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || [ "$rc" -eq 4 ] || exit "$rc"; }
gated "$BIN/cascade-build" all --data "$DIR/world" --redis 127.0.0.1:$((BASE + 9)) --model-dir "$DIR/models" >/dev/null 2>&1
for job in train-prerank train-mmoe train-two-tower; do
  gated "$BIN/cascade-build" "$job" --data "$DIR/world" --model-dir "$DIR/models" --quiet >/dev/null 2>&1
done
gated "$BIN/cascade-build" train-ltr --data "$DIR/world" --model-dir "$DIR/models" \
  --redis 127.0.0.1:$((BASE + 9)) --config config/cascade.json --replay-dir "$DIR/ltr-replay" \
  --quiet >/dev/null 2>&1
ls "$DIR/models"/*.latest | sed 's|.*/|published: |' >&2
"$BIN/cascade-bench-recommend" --addr 127.0.0.1:$BASE --threads 1 --requests 50 --users "$USERS" >/dev/null
echo "world: $USERS users, $ITEMS items, $EVENTS impressions; $(nproc) cores shared by client, six services and redis"
"$BIN/cascade-bench-recommend" --addr 127.0.0.1:$BASE --threads 1 --requests "$REQUESTS" --count 20 --users "$USERS"
"$BIN/cascade-bench-recommend" --addr 127.0.0.1:$BASE --threads 4 --requests "$REQUESTS" --count 20 --users "$USERS"
# Open loop (cascade-load, ghz's JSON report): latency from each call's scheduled send.
for rate in $RATES; do
  "$BIN/cascade-load" --insecure --call cascade.v1.Recommender.Recommend -O json \
    -d "{\"user\":{\"userId\":\"u{{randomInt 1 $((USERS + 1))}}\"},\"count\":20}" \
    -z "$DURATION" --rps "$rate" -c "$CONCURRENCY" 127.0.0.1:$BASE |
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
p = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"]}
errors = r["count"] - r["statusCodeDistribution"].get("OK", 0)
print("open loop %s calls/s: achieved %.1f calls/s, p50 %.1f ms, p99 %.1f ms, errors %d, degraded %d of %d"
      % (sys.argv[1], r["rps"], p.get(50, 0), p.get(99, 0), errors, r["degraded"], r["count"]))' "$rate"
done
