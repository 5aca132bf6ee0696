#!/usr/bin/env bash
# Offline builder benchmark: generate (or reuse) a synthetic world with
# cascade-datagen, start a private redis-server, and run the cascade-build
# steps one by one (load, itemcf, swing, usercf, then lists and authors when
# this build has them), each under /usr/bin/time -v. Prints a table with wall
# time and peak RSS per step, the builders' own summaries, and Redis memory
# after each step. Default: 1M users, 100k items, 14.3M impressions (≈ 20M
# events in total). Logs go to the work dir, which is removed unless --keep.
# --weights SPEC is passed to the CF steps (e.g. impression=1 for a denser
# interaction matrix); --rounds N runs the CF steps N times, so that from the
# third round on publishing also deletes generation gen-2 (the steady state).
# The ltr step is cascade-build train ltr (the learned rankers of pre-rank and
# rank, published into WORK/models when their gate passes) on a seeded sample
# of --ltr-users replayed users (its --max-users; default 5000, what fits in
# memory at 1M users: docs/load.md "Fourth round (d)"); it runs last.
# Usage: scripts/bench/build_world.sh [--users N] [--items N] [--impressions N]
#        [--world DIR] [--work DIR] [--bin-dir DIR] [--port N] [--threads N]
#        [--steps "load itemcf swing usercf lists authors ltr"] [--weights SPEC]
#        [--rounds N] [--ltr-users N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
USERS=1000000; ITEMS=100000; IMPRESSIONS=14300000; PORT=51190; THREADS=2
WORLD=""; WORK=""; KEEP=0; STEPS="load itemcf swing usercf lists authors ltr"; WEIGHTS=""; ROUNDS=1
LTR_USERS=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --items) ITEMS="$2"; shift 2 ;;
    --impressions) IMPRESSIONS="$2"; shift 2 ;;
    --world) WORLD="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --weights) WEIGHTS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --ltr-users) LTR_USERS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build_world.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
for exe in cascade-datagen cascade-build; do
  [ -x "$BIN/$exe" ] || { echo "build_world.sh: $BIN/$exe missing; build first (a RelWithDebInfo build is what the figures assume) or pass --bin-dir" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "build_world.sh: /usr/bin/time missing (Debian package 'time'; scripts/install-deps.sh)" >&2; exit 1; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "build_world.sh: redis-server / redis-cli not on PATH (scripts/install-deps.sh)" >&2; exit 1; }

if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/cascade-build-bench.XXXXXX); else mkdir -p "$WORK"; fi
[ -n "$WORLD" ] || WORLD="$WORK/world"
REDIS_PID=""
cleanup() {
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
}
trap cleanup EXIT
rcli() { redis-cli -p "$PORT" "$@"; }

# "<wall seconds> <peak RSS MiB>" from a /usr/bin/time -v log.
time_figures() {
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 / 1024 }
    END { printf "%.1f %.0f\n", s, rss }' "$1"
}
redis_mem() { rcli INFO memory | tr -d '\r' | awk -F: '/^used_memory_human:/ {u=$2} /^used_memory_peak_human:/ {p=$2} END {print u " (peak " p ")"}'; }

ROWS=()
record() { # step, time log
  read -r secs rss < <(time_figures "$2")
  ROWS+=("$(printf '| %-10s | %8s | %14s | %-24s | %9s |' "$1" "$secs" "$rss" "$(redis_mem 2>/dev/null || echo -)" "$(rcli DBSIZE 2>/dev/null || echo -)")")
}

if [ -f "$WORLD/events.tsv" ]; then
  echo "world: reusing $WORLD"
else
  echo "world: generating $USERS users, $ITEMS items, $IMPRESSIONS impressions into $WORLD"
  /usr/bin/time -v -o "$WORK/datagen.time" "$BIN/cascade-datagen" --out "$WORLD" \
    --users "$USERS" --items "$ITEMS" --events "$IMPRESSIONS" --authors $((ITEMS / 5)) \
    --cities 50 --seed 1 --end-ts 1764547200 --no-truth >"$WORK/datagen.out" 2>"$WORK/datagen.err" ||
    { echo "build_world.sh: cascade-datagen failed:" >&2; tail -5 "$WORK/datagen.err" >&2; exit 1; }
  cat "$WORK/datagen.out"
  read -r secs rss < <(time_figures "$WORK/datagen.time")
  ROWS+=("$(printf '| %-10s | %8s | %14s | %-24s | %9s |' datagen "$secs" "$rss" - -)")
fi
EVENTS=$(($(wc -l <"$WORLD/events.tsv") - 1))
echo "world: $(($(wc -l <"$WORLD/users.tsv") - 1)) users, $(($(wc -l <"$WORLD/items.tsv") - 1)) items, $EVENTS events"

mkdir -p "$WORK/redis"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
  --logfile "$WORK/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli PING >/dev/null || { echo "build_world.sh: redis-server on port $PORT did not start" >&2; exit 1; }

CF_SECS=0; MAX_RSS=0
run_step() { # step, label
  local step=$1 label=$2 extra=()
  case "$step" in
    itemcf|swing|usercf)
      extra=(--threads "$THREADS")
      [ -z "$WEIGHTS" ] || extra+=(--weights "$WEIGHTS") ;;
    ltr)
      extra=(--model-dir "$WORK/models" --config config/cascade.json --replay-dir "$WORK/ltr-replay"
        --threads "$THREADS" --max-users "$LTR_USERS") ;;
  esac
  echo "$label: running (progress in $WORK/$label.err)"
  local rc=0 cmd=("$step")
  [ "$step" != ltr ] || cmd=(train ltr)
  /usr/bin/time -v -o "$WORK/$label.time" "$BIN/cascade-build" "${cmd[@]}" --data "$WORLD" \
    --redis "127.0.0.1:$PORT" "${extra[@]}" >"$WORK/$label.out" 2>"$WORK/$label.err" || rc=$?
  # train ltr exits 3 when the data gives no list to learn from: reported, not fatal.
  if [ "$rc" -ne 0 ] && ! { [ "$step" = ltr ] && [ "$rc" -eq 3 ]; }; then
    echo "build_world.sh: cascade-build ${cmd[*]} failed:" >&2; tail -5 "$WORK/$label.err" >&2; exit 1
  fi
  sed 's/^/  /' "$WORK/$label.out"
  record "$label" "$WORK/$label.time"
  read -r secs rss < <(time_figures "$WORK/$label.time")
  case "$step" in itemcf|swing|usercf) [ "$label" != "$step" ] || CF_SECS=$(awk -v a="$CF_SECS" -v b="$secs" 'BEGIN {print a + b}') ;; esac
  MAX_RSS=$(awk -v a="$MAX_RSS" -v b="$rss" 'BEGIN {print (b > a ? b : a)}')
}
for step in $STEPS; do
  help=("$step")
  [ "$step" != ltr ] || help=(train ltr)
  if ! "$BIN/cascade-build" "${help[@]}" --help >/dev/null 2>&1; then
    echo "$step: not in this build of cascade-build, skipped"
    continue
  fi
  run_step "$step" "$step"
done
for round in $(seq 2 "$ROUNDS"); do
  for step in $STEPS; do
    case "$step" in itemcf|swing|usercf) run_step "$step" "$step#$round" ;; esac
  done
done

echo
echo "world: $USERS users, $ITEMS items, $EVENTS events; $(nproc) cores; each step reads the TSVs itself${WEIGHTS:+; CF weights $WEIGHTS}"
echo "| step       | wall (s) | peak RSS (MiB) | Redis used after (peak)  | keys      |"
echo "|------------|----------|----------------|--------------------------|-----------|"
printf '%s\n' "${ROWS[@]}"
echo "CF builders (itemcf + swing + usercf, first round): ${CF_SECS} s wall in total (target < 900 s); largest peak RSS of any step ${MAX_RSS} MiB (target < 8192)"
