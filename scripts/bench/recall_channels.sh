#!/usr/bin/env bash
# Recall channel latency benchmark: generate (or reuse) a synthetic world,
# load it into a private redis-server with the cascade-build steps every
# channel needs (load itemcf swing usercf lists authors), start cascade-recall
# on it, and run cascade-bench-recall: per channel, N calls of quota 500 for
# random users and again for the most active users (the --heavy N users with
# the most non-impression events: long histories, so the CF and author
# channels have the most to expand), with p50/p99 of the time inside the
# service (ChannelResult.latency_us, the same figure as the
# cascade_recall_channel_latency_seconds histogram) and at the client.
# Default world: 1M users, 100k items, 14.3M impressions (≈ 20M events). With
# --work DIR --keep the Redis dump stays in DIR and a rerun skips the build.
# Usage: scripts/bench/recall_channels.sh [--users N] [--items N]
#        [--impressions N] [--world DIR] [--work DIR] [--bin-dir DIR]
#        [--port N] [--requests N] [--quota N] [--threads N]
#        [--channels a,b,... (default: all)] [--heavy N (0 = skip)] [--keep]
#        [--recall-set PATH=VALUE (repeatable: cascade-recall --set, e.g.
#         recall.list_cache.enabled=false to measure without the list cache)]
#        [--warmup N (calls per channel before measuring, default 100; more
#         measures a warm list cache)]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
USERS=1000000; ITEMS=100000; IMPRESSIONS=14300000; PORT=51290; REQUESTS=2000; QUOTA=500
THREADS=2; WORLD=""; WORK=""; KEEP=0; CHANNELS=""; HEAVY=5000; RECALL_SET=(); WARMUP=100
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --items) ITEMS="$2"; shift 2 ;;
    --impressions) IMPRESSIONS="$2"; shift 2 ;;
    --world) WORLD="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --requests) REQUESTS="$2"; shift 2 ;;
    --quota) QUOTA="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --channels) CHANNELS="$2"; shift 2 ;;
    --heavy) HEAVY="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --recall-set) RECALL_SET+=(--set "$2"); shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "recall_channels.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
for exe in cascade-datagen cascade-build cascade-recall cascade-bench-recall; do
  [ -x "$BIN/$exe" ] || { echo "recall_channels.sh: $BIN/$exe missing; build first (RelWithDebInfo for figures) or pass --bin-dir" >&2; exit 1; }
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "recall_channels.sh: redis-server / redis-cli not on PATH (scripts/install-deps.sh)" >&2; exit 1; }

if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/cascade-recall-bench.XXXXXX); else mkdir -p "$WORK"; fi
[ -n "$WORLD" ] || WORLD="$WORK/world"
REDIS_PID=""; RECALL_PID=""
cleanup() {
  for pid in $RECALL_PID $REDIS_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
}
trap cleanup EXIT
rcli() { redis-cli -p "$PORT" "$@"; }

if [ -f "$WORLD/events.tsv" ]; then
  echo "world: reusing $WORLD"
else
  echo "world: generating $USERS users, $ITEMS items, $IMPRESSIONS impressions into $WORLD"
  "$BIN/cascade-datagen" --out "$WORLD" --users "$USERS" --items "$ITEMS" --events "$IMPRESSIONS" \
    --authors $((ITEMS / 5)) --cities 50 --seed 1 --end-ts 1764547200 --no-truth --quiet
fi
N_USERS=$(($(wc -l <"$WORLD/users.tsv") - 1))

mkdir -p "$WORK/redis"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
  --dbfilename dump.rdb --logfile "$WORK/redis/redis.log" &
REDIS_PID=$!
# A kept dump takes a while to load; PING answers LOADING until then.
for _ in $(seq 1 1200); do [ "$(rcli PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(rcli PING 2>/dev/null)" = PONG ] || { echo "recall_channels.sh: redis-server on port $PORT did not start" >&2; exit 1; }

if [ "$(rcli EXISTS cascade:gen:authors)" = 1 ]; then
  echo "redis: reusing the build in $WORK/redis/dump.rdb"
else
  for step in load itemcf swing usercf lists authors; do
    extra=()
    case "$step" in itemcf|swing|usercf) extra=(--threads "$THREADS") ;; esac
    "$BIN/cascade-build" "$step" --data "$WORLD" --redis "127.0.0.1:$PORT" --quiet "${extra[@]}" ||
      { echo "recall_channels.sh: cascade-build $step failed" >&2; exit 1; }
  done
  [ "$KEEP" = 0 ] || rcli SAVE >/dev/null
fi
echo "redis: $(rcli DBSIZE) keys, $(rcli INFO memory | tr -d '\r' | awk -F: '/^used_memory_human:/ {print $2}') used"

"$BIN/cascade-recall" --listen "127.0.0.1:$((PORT + 1))" --metrics-listen off \
  --redis "127.0.0.1:$PORT" --threads "$THREADS" --log-level warn ${RECALL_SET[@]+"${RECALL_SET[@]}"} &
RECALL_PID=$!
for _ in $(seq 1 100); do
  "$BIN/cascade-bench-recall" --addr "127.0.0.1:$((PORT + 1))" --channels hot --requests 1 \
    --warmup 0 --users 1 >/dev/null 2>&1 && break
  sleep 0.1
done

echo "$(nproc) cores shared by the client, cascade-recall ($THREADS threads) and redis-server; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/cascade-bench-recall" --addr "127.0.0.1:$((PORT + 1))" --requests "$REQUESTS" \
  --quota "$QUOTA" --warmup "$WARMUP" --users "$N_USERS" ${CHANNELS:+--channels "$CHANNELS"}
if [ "$HEAVY" -gt 0 ]; then
  awk -F'\t' 'NR > 1 && $4 != "impression" {n[$2]++} END {for (u in n) print n[u] "\t" u}' \
    "$WORLD/events.tsv" | sort -k1,1nr | awk -v n="$HEAVY" 'NR <= n {print $2}' >"$WORK/heavy_users.txt"
  echo "the $HEAVY most active users; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$BIN/cascade-bench-recall" --addr "127.0.0.1:$((PORT + 1))" --requests "$REQUESTS" \
    --quota "$QUOTA" --warmup "$WARMUP" --users-file "$WORK/heavy_users.txt" \
    ${CHANNELS:+--channels "$CHANNELS"}
fi
