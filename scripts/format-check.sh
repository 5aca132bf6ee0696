#!/usr/bin/env bash
# Check that every tracked C source and header matches .clang-format (the
# README test command runs it through tests/integration/test_format.sh).
# With --fix, reformat them in place instead. Exit 1 and the files' names when
# any does not match.
# Usage: scripts/format-check.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
FIX=0
case "${1:-}" in
  "") ;;
  --fix) FIX=1 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "format-check.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || {
  echo "format-check.sh: clang-format not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
mapfile -d '' files < <(git ls-files -z -- '*.c' '*.h')
if [ "$FIX" = 1 ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check.sh: ${#bad[@]} of ${#files[@]} files do not match .clang-format" \
       "($(clang-format --version | head -1)); fix with scripts/format-check.sh --fix:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format-check.sh: all ${#files[@]} C files match .clang-format"
