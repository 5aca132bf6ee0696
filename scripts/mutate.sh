#!/usr/bin/env bash
# Mutation check: plant small bugs in core formulas and features, one at a
# time, in a private copy of the tree, and expect the tests that cover them
# to fail. Each row: a file, an exact piece of its text and what replaces it,
# and the ctest regex of the tests that must catch it. Prints a markdown
# table (the one in HACKING.md) and exits 1 if any mutation survived or no
# longer applies. The working tree is never touched: the copy lives in a
# temporary directory (--work DIR keeps it, and its build, for the next run).
# Usage: scripts/mutate.sh [--work DIR] [--only N] [--list]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=""; ONLY=""; LIST=0
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --list) LIST=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "mutate.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done

# One mutation per line, tab-separated: name, file, the exact text to replace
# (its first occurrence; \n = newline), the replacement, and the ctest regex
# of the tests that must catch it.
MUTATIONS=$(cat <<'ROWS'
completion uses * for /	common/ml/rank_features.c	s->play_seconds / item->duration_s	s->play_seconds * item->duration_s	test_rank_features
affinity decay off	services/builder/lists/interests.c	if (half_life_s <= 0 || age_s <= 0)	if (1)	test_load$
Bloom seed changed	common/bloom.c	#define BLOOM_SEED 0x63617363616465ULL	#define BLOOM_SEED 0x63617363616466ULL	test_bloom
Swing drops alpha	services/builder/cf/swing.c	/ (c->alpha + row[L[q]])	/ (1.0 + row[L[q]])	test_swing
calibration drops alpha in the numerator	common/ml/calibration.c	return denom > 0.0 ? alpha * q / denom : 1.0;	return denom > 0.0 ? q / denom : 1.0;	test_calibration
holdout range one bucket short	common/experiments.c	for (uint32_t b = lo; b <= hi; b++)\n        holdout[b] = true;	for (uint32_t b = lo; b < hi; b++)\n        holdout[b] = true;	test_experiments
EASE ridge not added	common/ml/ease.c	m->b[i * m->n + i] += (float)o->lambda;	m->b[i * m->n + i] += 0.0f;	test_ease
tree split on <= instead of <	common/ml/gbdt.c	node = v < m->value[node]	node = v <= m->value[node]	test_gbdt|test_ltr_xgb
request id accepts a space	common/request.c	c == '.' || c == '_'	c == ' ' || c == '.' || c == '_'	test_request|test_recommend$
no reserve for later stages	services/orchestrator/orch_config.c	order[i]->reserve_ms = later;	order[i]->reserve_ms = 0;	test_orch_config|test_recommend$
no second reservation round	services/orchestrator/recommend.c	if (n_taken < rq->count && n_offer > first) {	if (0) {	test_recommend$
time-scale share doubled	services/builder/timescale.c	double d = share * span_days;	double d = 2 * share * span_days;	test_timescale
ROWS
)

if [ "$LIST" = 1 ]; then
  i=0
  while IFS=$'\t' read -r name _; do i=$((i + 1)); echo "$i $name"; done <<<"$MUTATIONS"
  exit 0
fi

KEEP=1
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d /tmp/cascade-mutate.XXXXXX); KEEP=0
fi
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
SRC="$WORK/src"
mkdir -p "$SRC"
# The tracked files as they are now, uncommitted edits included.
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$SRC"
echo "mutate.sh: building the unmutated copy in $SRC/build ..." >&2
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j2 >"$WORK/build.log" 2>&1 || {
  echo "mutate.sh: the unmutated tree does not build (see $WORK/build.log)" >&2; exit 1; }

# Replace the first occurrence of $2 by $3 in file $1 (\n = newline); exit 3
# when the text is not there.
apply_mutation() {
  /usr/bin/python3 -c '
import sys
path = sys.argv[1]
old, new = (a.replace("\\n", "\n") for a in sys.argv[2:4])
text = open(path).read()
if old not in text:
    sys.exit(3)
open(path, "w").write(text.replace(old, new, 1))
' "$@"
}

printf '| # | mutation | file | tests | result |\n|---|---|---|---|---|\n'
failures=0; i=0
while IFS=$'\t' read -r name file from to regex; do
  i=$((i + 1))
  [ -n "$ONLY" ] && [ "$ONLY" != "$i" ] && continue
  target="$SRC/$file"
  cp "$target" "$WORK/orig"
  if ! apply_mutation "$target" "$from" "$to"; then
    printf '| %d | %s | %s | `%s` | **did not apply** (the code changed: update the row) |\n' \
      "$i" "$name" "$file" "$regex"
    failures=$((failures + 1)); continue
  fi
  if ! cmake --build "$SRC/build" -j2 >"$WORK/build-$i.log" 2>&1; then
    result="caught (does not build)"
  elif ctest --test-dir "$SRC/build" -R "$regex" >"$WORK/ctest-$i.log" 2>&1; then
    result="**survived**"; failures=$((failures + 1))
  else
    result="caught: $(grep -o '[0-9]* tests failed out of [0-9]*' "$WORK/ctest-$i.log" || echo failed)"
  fi
  printf '| %d | %s | %s | `%s` | %s |\n' "$i" "$name" "$file" "$regex" "$result"
  cp "$WORK/orig" "$target"
done <<<"$MUTATIONS"
# Leave the copy's build unmutated for a later --work run.
cmake --build "$SRC/build" -j2 >/dev/null 2>&1 || true
if [ "$failures" -gt 0 ]; then
  echo "mutate.sh: $failures mutation(s) survived or no longer apply" >&2
  exit 1
fi
echo "mutate.sh: every mutation was caught" >&2
