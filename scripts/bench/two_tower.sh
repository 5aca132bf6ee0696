#!/usr/bin/env bash
# Two-tower benchmark: train the model (cascade-build train-two-tower, its
# per-epoch examples/s on stderr) on a data set, then cascade-bench-two_tower
# on the published model: one user vector (p50/p99), one IVF search for
# top-500 (the channel's quota) and top-100 next to the exact scan (p50/p99,
# one query per call, one thread), and IVF recall@100 against exact at the
# default nprobe and at each --sweep value, with real users' last interest
# events as history. Default data: ml-latest-small imported from --movielens
# (default ../shared/data/ml-latest-small); --data DIR uses a data set
# directory as is (e.g. cascade-datagen's).
# Usage: scripts/bench/two_tower.sh [--data DIR | --movielens DIR] [--work DIR]
#        [--bin-dir DIR] [--epochs N] [--queries N] [--sweep p1,p2,...]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
DATA=""; MOVIELENS="$REPO/../shared/data/ml-latest-small"; WORK=""; EPOCHS=3; QUERIES=1000
SWEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --movielens) MOVIELENS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --queries) QUERIES="$2"; shift 2 ;;
    --sweep) SWEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "two_tower.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
for b in cascade-build cascade-bench-two_tower; do
  if [ ! -x "$BIN/$b" ]; then
    echo "two_tower.sh: $BIN/$b not found; build it (cmake --build build --target $b) or pass --bin-dir" >&2
    exit 1
  fi
done
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d /tmp/cascade-two-tower-bench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
if [ -z "$DATA" ]; then
  DATA="$WORK/data"
  "$BIN/cascade-build" import-movielens --format latest-small --in "$MOVIELENS" --out "$DATA" >&2
fi
echo "== training: cascade-build train-two-tower --data $DATA --epochs $EPOCHS (OpenBLAS default threads)"
"$BIN/cascade-build" train-two-tower --data "$DATA" --model-dir "$WORK/model" --epochs "$EPOCHS" \
  > "$WORK/train.log" 2>&1
grep -E "epoch [0-9]+/|positives|recall@|model " "$WORK/train.log" | sed 's/^train-two-tower: //'
echo "== serving: cascade-bench-two_tower (1 thread)"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$BIN/cascade-bench-two_tower" --model-dir "$WORK/model" --data "$DATA" --queries "$QUERIES" \
  --threads 1 ${SWEEP:+--sweep "$SWEEP"}
