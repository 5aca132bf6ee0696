#!/usr/bin/env bash
# Re-rank selection benchmark: MMR and DPP picking 50 of 500 candidates
# (64-float embeddings, 20 categories, 100 authors), one thread
# (OPENBLAS_NUM_THREADS=1), in-process through cascade-bench-rerank; then
# DPP with a sliding window of 10. Figures go in docs/stages.md (ReRank).
# Usage: scripts/bench/rerank.sh [--bin-dir DIR] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$(pwd)/build/bin"; ROUNDS=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rerank.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
export OPENBLAS_NUM_THREADS=1
echo "load: $(uptime)"
"$BIN/cascade-bench-rerank" --candidates 500 --count 50 --rounds "$ROUNDS"
"$BIN/cascade-bench-rerank" --candidates 500 --count 50 --window 10 --rounds "$ROUNDS"
