#!/usr/bin/env bash
# The README's "run it" command: on a fresh Debian machine, install the
# dependencies, build, start a private redis-server and all six services,
# generate a synthetic world (or import your own data, --data), load it, build
# every recall index (ItemCF, Swing, UserCF, EASE, hot/new/geo/city/author
# lists) and train and gate the models (pre-rank LR, MMoE ranker, two-tower
# retrieval, the learned pre-ranker and ranker; the services hot-swap them in),
# then print recommendations for a few users and say how to query and stop the
# stack.
#
# Usage: scripts/run-local.sh [--data DIR] [--port-base N] [--data-dir DIR]
#                             [--users N] [--items N] [--events N] [--no-build] [--bin-dir DIR]
#
#   --data DIR      run on your own data instead of a synthetic world. DIR is one of
#                     ml-latest-small  ratings.csv + movies.csv
#                     ml-100k          u.data + u.item + u.user
#                     Cascade TSV      users.tsv + items.tsv + events.tsv (docs/data.md)
#                   (detected from the files). MovieLens is imported into
#                   <data-dir>/data; TSVs are read in place. Nothing is written
#                   into DIR. Recommendations are printed for the first three
#                   users of its event log.
#   --port-base N   orchestrator port, stages N+1..N+5, Redis N+9 (default: 50050,
#                   or the first free base of 20050, 23050, 26050, 29050)
#   --data-dir DIR  Redis data, logs, pid files, models, generated or imported
#                   data (default run/local)
#   --users N, --items N, --events N
#                   size of the synthetic world (default 5000, 2000, 300000);
#                   not with --data
#   --no-build      skip installing the dependencies and building; use the
#                   binaries already in build/bin
#   --bin-dir DIR   use the cascade-* binaries in DIR (implies --no-build)
#   -h, --help      this text
#
# A trainer that exits 3 (the data does not support its model) or 4 (the gate
# kept the published model) is reported and the run goes on. If a step fails
# after the stack has started, the stack is stopped again.
set -euo pipefail
CALLER_DIR=$(pwd)
cd "$(dirname "$0")/.."
REPO=$(pwd)
PROG="run-local"

die() { echo "$PROG: $*" >&2; exit 2; }
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

PORT_BASE=""
DATA_DIR="$REPO/run/local"
USERS=5000
ITEMS=2000
EVENTS=300000
DATA=""
WORLD_FLAGS=""
BUILD=1
BIN="$REPO/build/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --port-base) need_arg "$@"; PORT_BASE="$2"; shift 2 ;;
    --data-dir) need_arg "$@"; DATA_DIR="$2"; shift 2 ;;
    --users) need_arg "$@"; USERS="$2"; WORLD_FLAGS="$WORLD_FLAGS $1"; shift 2 ;;
    --items) need_arg "$@"; ITEMS="$2"; WORLD_FLAGS="$WORLD_FLAGS $1"; shift 2 ;;
    --events) need_arg "$@"; EVENTS="$2"; WORLD_FLAGS="$WORLD_FLAGS $1"; shift 2 ;;
    --data) need_arg "$@"; DATA="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --bin-dir) need_arg "$@"; BIN="$2"; BUILD=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$REPO/scripts/run-local.sh" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option \"$1\" (see --help)" ;;
  esac
done

# Relative paths are taken from where the command was run.
from_caller() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$CALLER_DIR/$1" ;; esac; }
DATA_DIR=$(from_caller "$DATA_DIR")
BIN=$(from_caller "$BIN")
[ -z "$DATA" ] || DATA=$(from_caller "$DATA")

# Which data set --data names: decided before anything is installed, built or
# started. FORMAT is latest-small, 100k or tsv.
FORMAT=""
if [ -n "$DATA" ]; then
  [ -z "$WORLD_FLAGS" ] || die "${WORLD_FLAGS# }: only for the synthetic world, not with --data"
  [ -d "$DATA" ] || die "--data $DATA: not a directory"
  [ -r "$DATA" ] && [ -x "$DATA" ] || die "--data $DATA: directory not readable"
  DATA=$(cd "$DATA" && pwd)
  has_all() { local f; for f in "$@"; do [ -f "$DATA/$f" ] || return 1; done; }
  if has_all users.tsv items.tsv events.tsv; then
    FORMAT=tsv
  elif has_all ratings.csv movies.csv; then
    FORMAT=latest-small
  elif has_all u.data u.item u.user; then
    FORMAT=100k
  else
    found=""
    for f in users.tsv items.tsv events.tsv ratings.csv movies.csv u.data u.item u.user; do
      [ -f "$DATA/$f" ] && found="$found $f"
    done
    {
      echo "$PROG: --data $DATA: not a data set this script knows; expected one of"
      echo "  ml-latest-small: ratings.csv and movies.csv"
      echo "  ml-100k:         u.data, u.item and u.user"
      echo "  Cascade TSV:     users.tsv, items.tsv and events.tsv (docs/data.md)"
      echo "  found:${found:- none of these files}"
    } >&2
    exit 2
  fi
fi
if [ -n "$DATA" ]; then
  # The data dir is written to (imports, Redis, logs): never inside DIR.
  case "$(realpath -m "$DATA_DIR")/" in
    "$(realpath -m "$DATA")"/*) die "--data-dir $DATA_DIR: inside --data $DATA, which is never written to; choose another --data-dir" ;;
  esac
fi
[[ -z "$PORT_BASE" || "$PORT_BASE" =~ ^[0-9]+$ ]] || die "--port-base: expected a port number, got \"$PORT_BASE\""
# Absolute, so the commands printed at the end work from any directory.
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd)

step() { printf '\n== %s\n' "$*"; }

if [ "$BUILD" = 1 ]; then
  step "1/6 dependencies"
  bash scripts/install-deps.sh

  step "2/6 build"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|warning|Built target cascade-" || true
  [ -x "$BIN/cascade-orchestrator" ] || { echo "$PROG: build failed" >&2; exit 1; }
else
  step "1-2/6 dependencies and build skipped; binaries in $BIN"
  [ -x "$BIN/cascade-orchestrator" ] && [ -x "$BIN/cascade-build" ] ||
    { echo "$PROG: no cascade binaries in $BIN (build first, or drop --no-build)" >&2; exit 1; }
fi

if [ -z "$PORT_BASE" ]; then
  # A previous run of this command may still be up: stop it first.
  if [ -f "$DATA_DIR/stack.env" ]; then
    prev=$(sed -n 's/^STACK_PORT_BASE=//p' "$DATA_DIR/stack.env")
    [ -z "$prev" ] || bash scripts/stack.sh stop --port-base "$prev" --data-dir "$DATA_DIR" >/dev/null 2>&1 || true
  fi
  # 50050 unless something holds one of its ports; then bases below the
  # ephemeral port range.
  for base in 50050 20050 23050 26050 29050; do
    if bash scripts/stack.sh check --port-base "$base" --data-dir "$DATA_DIR" 2>/dev/null; then
      PORT_BASE=$base
      break
    fi
    echo "$PROG: a port of base $base is in use; trying another" >&2
  done
  [ -n "$PORT_BASE" ] || { echo "$PROG: no free port base; pass --port-base N" >&2; exit 1; }
fi
REDIS_PORT=$((PORT_BASE + 9))

step "3/6 start redis-server and the six services (port base $PORT_BASE, data in $DATA_DIR)"
bash scripts/stack.sh stop --port-base "$PORT_BASE" --data-dir "$DATA_DIR" >/dev/null 2>&1 || true
# From here on a failing step stops the stack again rather than leaving it
# half built.
stop_on_failure() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    echo "$PROG: failed (exit $rc); stopping the stack" >&2
    bash scripts/stack.sh stop --port-base "$PORT_BASE" --data-dir "$DATA_DIR" >/dev/null 2>&1 || true
  fi
}
trap stop_on_failure EXIT
# The closed loop's stream consumer runs too (docs/closed-loop.md): online
# counters, and day partitions of the Feedback events in the directory the
# build reads (the generated or imported TSVs; none for TSVs read in place,
# which are the user's own files).
consumer=(--consumer)
if [ -z "$DATA" ]; then
  consumer+=(--set "consumer.data_dir=$DATA_DIR/world")
elif [ "$FORMAT" != tsv ]; then
  consumer+=(--set "consumer.data_dir=$DATA_DIR/data")
fi
bash scripts/stack.sh start --port-base "$PORT_BASE" --data-dir "$DATA_DIR" --bin-dir "$BIN" \
  "${consumer[@]}"

if [ -z "$DATA" ]; then
  step "4/6 generate a synthetic world ($USERS users, $ITEMS items, $EVENTS impressions)"
  TSV="$DATA_DIR/world"
  "$BIN/cascade-datagen" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 42 \
    --out "$TSV"
elif [ "$FORMAT" = tsv ]; then
  step "4/6 Cascade TSV files in $DATA (read in place)"
  TSV="$DATA"
else
  step "4/6 import MovieLens ($FORMAT) from $DATA into $DATA_DIR/data"
  TSV="$DATA_DIR/data"
  "$BIN/cascade-build" import-movielens --format "$FORMAT" --in "$DATA" --out "$TSV"
fi

step "5/6 load Redis, build the recall indexes, train the models"
# A trainer whose model the gate keeps back (exit 3: the data does not support
# it, 4: worse than the published one) is reported, not fatal: the services
# serve what is published, or their fallback.
gated() {
  local rc=0
  "$@" || rc=$?
  case "$rc" in
    0) ;;
    3|4) echo "$PROG: ${2/#all/all (train-rank)}: model not published (exit $rc, see the lines above)" ;;
    *) exit "$rc" ;;
  esac
}
gated "$BIN/cascade-build" all --data "$TSV" --redis "127.0.0.1:$REDIS_PORT" \
  --model-dir "$DATA_DIR/models"
# The learned models (the services pick each up without a restart).
for job in train-prerank train-mmoe train-two-tower; do
  gated "$BIN/cascade-build" "$job" --data "$TSV" --model-dir "$DATA_DIR/models"
done
# The learned pre-ranker and ranker, on lists replayed through recall.
gated "$BIN/cascade-build" train-ltr --data "$TSV" --model-dir "$DATA_DIR/models" \
  --redis "127.0.0.1:$REDIS_PORT" --replay-namespace ltr-replay --config config/cascade.json \
  --replay-dir "$DATA_DIR/ltr-replay" --quiet

step "6/6 recommendations"
if [ -z "$DATA" ]; then
  SHOW_USERS="u1 u2 u3"
  TRY_USER=u42
else
  # The first three users of the event log (users with a history; a TSV may
  # list users without any event).
  SHOW_USERS=$(awk -F'\t' '{ sub(/\r$/, "") }
    NR == 1 && $1 == "ts" { next }
    NF >= 2 && $2 != "" && !seen[$2]++ { print $2; if (++n == 3) exit }' "$TSV/events.tsv")
  [ -n "$SHOW_USERS" ] || { echo "$PROG: $TSV/events.tsv names no user" >&2; exit 1; }
  TRY_USER=${SHOW_USERS%%$'\n'*}
fi
for user in $SHOW_USERS; do
  "$BIN/cascade-cli" recommend --addr "127.0.0.1:$PORT_BASE" --user "$user" --count 10
  echo
done
trap - EXIT

cat <<EOM
The stack is running. Try:
  $BIN/cascade-cli recommend --addr 127.0.0.1:$PORT_BASE --user $TRY_USER --count 20 --debug
  $BIN/cascade-cli feedback  --addr 127.0.0.1:$PORT_BASE --user $TRY_USER --item <id> --type click
  $BIN/cascade-cli health    --addr 127.0.0.1:$PORT_BASE
  grpcurl -plaintext -protoset build/cascade.protoset -d '{"user":{"user_id":"$TRY_USER"},"count":5}' \\
      127.0.0.1:$PORT_BASE cascade.v1.Recommender/Recommend
Logs: $DATA_DIR/*.log
Stop it with:
  scripts/stack.sh stop --port-base $PORT_BASE --data-dir $DATA_DIR
EOM
