#!/usr/bin/env bash
# Saturation curve of Recommend (issue 15, item 2): p50/p99 against offered
# rate, open loop (cascade-load --rps: latency from each call's due time), the
# load generator on the same machine as the stack. Prints a markdown table for
# docs/load.md with the command and the load average before and after.
#
# The world is built once into --world DIR (a stack data dir: dump.rdb,
# models/; cascade-datagen, cascade-build all and every trainer, as
# scripts/bench/recommend.sh does) and reused by later runs; each run starts
# its stack on a copy of it, so every run begins from the same Redis state.
# Rates run in the order given; after the first rate with errors the rest are
# skipped (--all-rates runs them anyway). The learned rankers are trained on a
# seeded sample of --ltr-users replayed users (train ltr's --max-users,
# default 5000: all of them on small worlds, what fits in memory at 1M users;
# docs/load.md "Fourth round (d)").
# Usage: scripts/bench/saturation.sh --world DIR [--users N] [--items N] [--events N]
#        [--rates "100 200 300 400 500"] [--duration 60s] [--concurrency N]
#        [--port-base N] [--bin-dir DIR] [--all-rates] [--set PATH=VALUE]... [--ltr-users N]
#        [--unix]
# --unix: the stack's inner hops (services to Redis, orchestrator to stages)
# go over Unix sockets (scripts/stack.sh --unix); the load generator calls the
# orchestrator over TCP either way, as a gateway would.
# Example (the issue's target: 400 calls/s for 60 s, p99 <= 25 ms on 2 cores):
#   scripts/bench/saturation.sh --world /tmp/world-1m --users 1000000 --items 100000 \
#     --events 14300000 --rates "100 200 300 400 500 600" --duration 60s
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
WORLD=""; USERS=1000000; ITEMS=100000; EVENTS=14300000; BASE=45250
RATES="100 200 300 400 500"; DURATION=60s; CONCURRENCY=64; ALL=0; SETS=(); LTR_USERS=5000
UNIX=()
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --world) WORLD="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --items) ITEMS="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --rates) RATES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --port-base) BASE="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    --all-rates) ALL=1; shift ;;
    --unix) UNIX=(--unix); shift ;;
    --set) SETS+=(--set "$2"); shift 2 ;;
    --ltr-users) LTR_USERS="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "saturation.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$WORLD" ] || { echo "saturation.sh: --world DIR is required (built there when empty)" >&2; exit 2; }
for exe in cascade-load cascade-datagen cascade-build cascade-orchestrator; do
  [ -x "$BIN/$exe" ] || { echo "saturation.sh: $BIN/$exe missing; build first" >&2; exit 1; }
done
RUN=""; BUILDING=0
cleanup() {
  if [ "$BUILDING" = 1 ]; then
    bash scripts/stack.sh stop --port-base "$BASE" --data-dir "$WORLD" >/dev/null 2>&1 || true
  fi
  if [ -n "$RUN" ]; then
    bash scripts/stack.sh stop --port-base "$BASE" --data-dir "$RUN" >/dev/null 2>&1 || true
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT

if [ ! -f "$WORLD/dump.rdb" ]; then
  echo "building the world into $WORLD ($USERS users, $ITEMS items, $EVENTS impressions)" >&2
  mkdir -p "$WORLD"
  BUILDING=1
  bash scripts/stack.sh start --port-base "$BASE" --data-dir "$WORLD" --bin-dir "$BIN" >/dev/null
  "$BIN/cascade-datagen" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 7 --quiet \
    --out "$WORLD/world"
  # Exit 3/4 = the gate kept a model back: the stack serves what is published.
  gated() { local rc=0; "$@" || rc=$?; [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || [ "$rc" -eq 4 ] || exit "$rc"; }
  gated "$BIN/cascade-build" all --data "$WORLD/world" --redis 127.0.0.1:$((BASE + 9)) \
    --model-dir "$WORLD/models" --quiet
  for job in train-prerank train-mmoe train-two-tower; do
    gated "$BIN/cascade-build" "$job" --data "$WORLD/world" --model-dir "$WORLD/models" --quiet
  done
  gated "$BIN/cascade-build" train-ltr --data "$WORLD/world" --model-dir "$WORLD/models" \
    --redis 127.0.0.1:$((BASE + 9)) --config config/cascade.json --replay-dir "$WORLD/ltr-replay" \
    --max-users "$LTR_USERS" --quiet
  bash scripts/stack.sh stop --port-base "$BASE" --data-dir "$WORLD" >/dev/null # Redis saves dump.rdb
  BUILDING=0
fi

RUN=$(mktemp -d /tmp/cascade-saturation.XXXXXX)
cp "$WORLD/dump.rdb" "$RUN/"
ln -s "$(cd "$WORLD" && pwd)/models" "$RUN/models"
bash scripts/stack.sh start --port-base "$BASE" --data-dir "$RUN" --bin-dir "$BIN" --timeout 300 \
  ${SETS[@]+"${SETS[@]}"} ${UNIX[@]+"${UNIX[@]}"} >/dev/null
# Warm-up: connections, generation caches, the page cache of the models.
"$BIN/cascade-load" --insecure --call cascade.v1.Recommender.Recommend -n 200 -c 4 \
  -d "{\"user\":{\"userId\":\"u{{randomInt 1 $((USERS + 1))}}\"},\"count\":20}" 127.0.0.1:"$BASE" >/dev/null

echo "\`scripts/bench/saturation.sh $ARGS\`"
echo "(load $(uptime | sed 's/.*load average: //') at the start, $(date -u '+%Y-%m-%d %H:%M') UTC; $(nproc) cores)"
echo
echo "| offered calls/s | achieved calls/s | p50 | p90 | p99 | errors | degraded |"
echo "|---|---|---|---|---|---|---|"
for rate in $RATES; do
  line=$("$BIN/cascade-load" --insecure --call cascade.v1.Recommender.Recommend -O json \
    -d "{\"user\":{\"userId\":\"u{{randomInt 1 $((USERS + 1))}}\"},\"count\":20}" \
    -z "$DURATION" --rps "$rate" -c "$CONCURRENCY" -t 2s 127.0.0.1:"$BASE" |
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
p = {d["percentage"]: d["latency"] / 1e6 for d in r["latencyDistribution"]}
errors = r["count"] - r["statusCodeDistribution"].get("OK", 0)
print("| %s | %.1f | %.1f ms | %.1f ms | %.1f ms | %d | %d of %d |"
      % (sys.argv[1], r["rps"], p.get(50, 0), p.get(90, 0), p.get(99, 0), errors, r["degraded"], r["count"]))' "$rate")
  echo "$line"
  errors=$(echo "$line" | awk -F'|' '{ gsub(/ /, "", $7); print $7 }')
  [ "$ALL" = 1 ] || [ "$errors" = 0 ] || break
done
echo
echo "(load $(uptime | sed 's/.*load average: //') at the end)"
