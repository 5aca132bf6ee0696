#!/usr/bin/env bash
# The README's "run it" command: on a fresh Debian machine, install the
# dependencies, build, start a private redis-server and all six services,
# generate a synthetic world, load it, build every recall index (ItemCF,
# Swing, UserCF, hot/new/geo/city/author lists) and train the models (pre-rank
# LR, MMoE ranker, two-tower retrieval; the services hot-swap them in), then print
# recommendations for a few users and say how to query and stop the stack.
#
# Usage: scripts/run-local.sh [--port-base N] [--data-dir DIR] [--users N] [--items N] [--events N]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

PORT_BASE=""
DATA_DIR="$REPO/run/local"
USERS=5000
ITEMS=2000
EVENTS=300000
while [ $# -gt 0 ]; do
  case "$1" in
    --port-base) PORT_BASE="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --items) ITEMS="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-local: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
BIN="$REPO/build/bin"

step() { printf '\n== %s\n' "$*"; }

step "1/6 dependencies"
bash scripts/install-deps.sh

step "2/6 build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -E "error|warning|Built target cascade-" || true
[ -x "$BIN/cascade-orchestrator" ] || { echo "run-local: build failed" >&2; exit 1; }

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
    echo "run-local: a port of base $base is in use; trying another" >&2
  done
  [ -n "$PORT_BASE" ] || { echo "run-local: no free port base; pass --port-base N" >&2; exit 1; }
fi
REDIS_PORT=$((PORT_BASE + 9))

step "3/6 start redis-server and the six services (port base $PORT_BASE, data in $DATA_DIR)"
bash scripts/stack.sh stop --port-base "$PORT_BASE" --data-dir "$DATA_DIR" >/dev/null 2>&1 || true
mkdir -p "$DATA_DIR"
bash scripts/stack.sh start --port-base "$PORT_BASE" --data-dir "$DATA_DIR" --bin-dir "$BIN"

step "4/6 generate a synthetic world ($USERS users, $ITEMS items, $EVENTS impressions)"
"$BIN/cascade-datagen" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 42 \
  --out "$DATA_DIR/world"

step "5/6 load Redis, build the recall indexes, train the models"
# A trainer whose model the gate keeps back (exit 3: the data does not support
# it, 4: worse than the published one) is reported, not fatal: the services
# serve what is published, or their fallback.
gated() {
  local rc=0
  "$@" || rc=$?
  case "$rc" in
    0) ;;
    3|4) echo "run-local: $2: model not published (exit $rc, see the lines above)" ;;
    *) exit "$rc" ;;
  esac
}
gated "$BIN/cascade-build" all --data "$DATA_DIR/world" --redis "127.0.0.1:$REDIS_PORT" \
  --model-dir "$DATA_DIR/models"
# The learned models (the services pick each up without a restart).
for job in train-prerank train-mmoe train-two-tower; do
  gated "$BIN/cascade-build" "$job" --data "$DATA_DIR/world" --model-dir "$DATA_DIR/models"
done
# The learned pre-ranker and ranker, on lists replayed through recall.
gated "$BIN/cascade-build" train-ltr --data "$DATA_DIR/world" --model-dir "$DATA_DIR/models" \
  --redis "127.0.0.1:$REDIS_PORT" --replay-namespace ltr-replay --config config/cascade.json \
  --replay-dir "$DATA_DIR/ltr-replay" --quiet

step "6/6 recommendations"
for user in u1 u2 u3; do
  "$BIN/cascade-cli" recommend --addr "127.0.0.1:$PORT_BASE" --user "$user" --count 10
  echo
done

cat <<EOM
The stack is running. Try:
  $BIN/cascade-cli recommend --addr 127.0.0.1:$PORT_BASE --user u42 --count 20 --debug
  $BIN/cascade-cli feedback  --addr 127.0.0.1:$PORT_BASE --user u42 --item <id> --type click
  $BIN/cascade-cli health    --addr 127.0.0.1:$PORT_BASE
  grpcurl -plaintext -protoset build/cascade.protoset -d '{"user":{"user_id":"u42"},"count":5}' \\
      127.0.0.1:$PORT_BASE cascade.v1.Recommender/Recommend
Logs: $DATA_DIR/*.log
Stop it with:
  scripts/stack.sh stop --port-base $PORT_BASE --data-dir $DATA_DIR
EOM
