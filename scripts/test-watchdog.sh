#!/usr/bin/env bash
# Backtraces of hung tests: scripts/test.sh runs this beside ctest. Every 15 s it
# looks for test binaries of BUILD_DIR (BUILD_DIR/tests/*) that have run longer
# than AFTER_S seconds (default 240, below ctest's 300 s timeout) and prints the
# stack of every thread of each (gdb, once per process) to stderr, so a test
# that hangs leaves in the CI log where it waited before ctest kills it.
# Usage: scripts/test-watchdog.sh BUILD_DIR [AFTER_S]
set -uo pipefail
build_dir=$(cd "$1" && pwd)
after_s=${2:-240}
declare -A dumped=()
command -v gdb >/dev/null || { echo "test-watchdog: gdb not found: no backtraces" >&2; exit 0; }
while sleep 15; do
  for exe in /proc/[0-9]*/exe; do
    pid=${exe#/proc/}; pid=${pid%/exe}
    target=$(readlink "$exe" 2>/dev/null) || continue
    [[ $target == "$build_dir/tests/"* ]] || continue
    [[ -z ${dumped[$pid]:-} ]] || continue
    age=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ') || continue
    [[ -n $age && $age -gt $after_s ]] || continue
    dumped[$pid]=1
    {
      echo "test-watchdog: $target (pid $pid) has run ${age} s; its threads:"
      timeout 60 gdb -p "$pid" -batch -nx -ex "set pagination off" \
        -ex "thread apply all bt" 2>&1 | grep -v "^\[New LWP\|^\[Thread debugging"
      echo "test-watchdog: end of $target (pid $pid)"
    } >&2
  done
done
