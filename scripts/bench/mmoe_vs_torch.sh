#!/usr/bin/env bash
# MMoE inference benchmark against torch: mmoe_torch.py builds the notes'
# PyTorch MMoE (seeded; default 16 inputs, 4 experts of 32, towers of 16,
# the six default tasks) and writes it as safetensors; cascade-bench-mmoe
# loads that file and times cascade_mmoe_predict, and mmoe_torch.py times the
# notes' forward (torch.inference_mode), both on one batch of 300 candidates,
# on 1 and on 2 threads (ours: the batch split into one slice per thread,
# one scratch each, OpenBLAS single-threaded; torch: torch.set_num_threads,
# its intra-op parallelism). Prints p50/p99/mean µs per batch and candidates/s.
# Needs python3-torch and python3-numpy (scripts/install-deps.sh).
# Usage: scripts/bench/mmoe_vs_torch.sh [--bin-dir DIR] [--candidates N]
#        [--iters I] [--threads "1 2"] [-- extra mmoe_torch.py write-model options]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
N=300
ITERS=2000
THREADS="1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN="$2"; shift 2 ;;
    --candidates) N="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mmoe_vs_torch.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$BIN/cascade-bench-mmoe" ]; then
  echo "mmoe_vs_torch.sh: $BIN/cascade-bench-mmoe not found; build it (cmake --build build --target cascade-bench-mmoe) or pass --bin-dir" >&2
  exit 1
fi
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
  echo "mmoe_vs_torch.sh: python3-torch and python3-numpy are needed (scripts/install-deps.sh)" >&2
  exit 1
fi
WORK=$(mktemp -d /tmp/cascade-mmoe-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PY="$REPO/scripts/bench/mmoe_torch.py"
/usr/bin/python3 "$PY" write-model --out "$WORK/mmoe.safetensors" "$@"
echo "| implementation | threads | candidates | p50 µs | p99 µs | mean µs | candidates/s |"
echo "|---|---|---|---|---|---|---|"
for t in $THREADS; do
  OPENBLAS_NUM_THREADS=1 "$BIN/cascade-bench-mmoe" --model "$WORK/mmoe.safetensors" \
    --candidates "$N" --iters "$ITERS" --threads "$t" 2>/dev/null
  /usr/bin/python3 "$PY" bench --model "$WORK/mmoe.safetensors" --candidates "$N" \
    --iters "$ITERS" --threads "$t"
done
