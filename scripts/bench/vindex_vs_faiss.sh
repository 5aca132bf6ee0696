#!/usr/bin/env bash
# Vector index benchmark: cascade-bench-vindex builds clustered synthetic
# vectors (seeded), measures the exact scan and the IVF index (build time,
# recall@k against exact, p50/p99 wall and CPU time of one query per call,
# batch QPS) and writes the vectors, queries, exact ids and IVF settings as
# .npy/params.txt; then vindex_faiss.py measures faiss IndexFlatIP and
# IndexIVFFlat (same nlist, nprobe, k-means iterations and sample size) on the
# same files. Everything runs on one thread (OPENBLAS_NUM_THREADS=1,
# faiss.omp_set_num_threads(1)). Needs python3-faiss and python3-numpy
# (scripts/install-deps.sh).
# Usage: scripts/bench/vindex_vs_faiss.sh [--bin-dir DIR] [--work DIR]
#        [-- extra cascade-bench-vindex options, e.g. --n 20000 --sweep 16,32]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vindex_vs_faiss.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$BIN/cascade-bench-vindex" ]; then
  echo "vindex_vs_faiss.sh: $BIN/cascade-bench-vindex not found; build it (cmake --build build --target cascade-bench-vindex) or pass --bin-dir" >&2
  exit 1
fi
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d /tmp/cascade-vindex-bench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$BIN/cascade-bench-vindex" --threads 1 --out-dir "$WORK" "$@"
/usr/bin/python3 "$REPO/scripts/bench/vindex_faiss.py" "$WORK"
