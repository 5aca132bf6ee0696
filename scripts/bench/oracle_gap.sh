#!/usr/bin/env bash
# Click AUC of the MMoE ranker against the generator's oracle on two synthetic
# worlds of the same generator: the default one (10k users, 300k impressions:
# ~30 per user) and one with ten times the history per user (3M impressions),
# each next to the ceiling of point-in-time estimates from
# scripts/bench/oracle_ceiling.py. docs/mmoe.md §5 has the figures.
# Usage: scripts/bench/oracle_gap.sh [--epochs N] [--work DIR] [--bin-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$(pwd)/build/bin"; EPOCHS=5; WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "oracle_gap.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN/cascade-build" ] || { echo "oracle_gap.sh: $BIN/cascade-build missing; build first" >&2; exit 1; }
if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/cascade-oracle-gap.XXXXXX); trap 'rm -rf "$WORK"' EXIT; fi
for events in 300000 3000000; do
  world="$WORK/world-$events"
  "$BIN/cascade-datagen" --out "$world" --seed 1 --end-ts 1764547200 --events "$events" --truth-terms --quiet
  echo "== $events impressions (10,000 users, 2,000 items), $EPOCHS epochs"
  "$BIN/cascade-build" train mmoe --data "$world" --model-dir "$WORK/models-$events" \
    --epochs "$EPOCHS" --no-warm-start --quiet 2>&1 | grep -E "examples \(|oracle AUC"
  /usr/bin/python3 scripts/bench/oracle_ceiling.py --data "$world" | grep -E "oracle AUC|together"
done
