#!/usr/bin/env bash
# Time cascade-ab on a generated log of USERS users (default 200000; about
# 2.4 requests and 9 served items each, the click mix of tests/integration/
# test_ab.py): prints the sizes and the wall time of the TSV readout.
#   scripts/bench/ab_readout.sh [USERS]
# Figures: docs/experiments.md ("Readout: cascade-ab", Cost).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${CASCADE_BIN_DIR:-$REPO/build/bin}"
USERS="${1:-200000}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$REPO" "$TMP" "$USERS" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "integration"))
import test_ab as t
serves, events, _ = t.make_log(1, users=int(sys.argv[3]))
t.write_tsv(os.path.join(sys.argv[2], "serves.tsv"), serves, t.SERVE_FIELDS)
t.write_tsv(os.path.join(sys.argv[2], "events.tsv"), events, t.EVENT_FIELDS)
json.dump(t.CONFIG, open(os.path.join(sys.argv[2], "cascade.json"), "w"))
print("users %s, serves %d, events %d" % (sys.argv[3], len(serves), len(events)))
PY
uptime
start=$(date +%s.%N)
"$BIN/cascade-ab" --serves "$TMP/serves.tsv" --events "$TMP/events.tsv" \
  --config "$TMP/cascade.json" --json >/dev/null
end=$(date +%s.%N)
echo "cascade-ab: $(echo "$end - $start" | bc) s"
