#!/usr/bin/env bash
# The suite under ThreadSanitizer: configures build-tsan (-DCASCADE_TSAN=ON,
# RelWithDebInfo), builds everything and runs the threaded tests through ctest
# (rpc, service, redis, caches, recall, filter, rank, the nn trainers with
# threads, orchestrator, consumer, load). Left out by default: test_recommend,
# whose fake stages answer within 2 s budgets that TSan's 5-15x slowdown
# overruns on a busy machine, and test_vindex (single-threaded apart from
# OpenBLAS, and past the 300 s test timeout when instrumented).
# Usage: scripts/tsan.sh [--all] [extra ctest args...]
#   --all   the whole suite, integration tests included (the services run
#           instrumented too; slow)
# A race makes the test fail (halt_on_error=1 and a non-zero exitcode); the
# report is in the ctest output. Known third-party reports are suppressed in
# tests/tsan.supp, each with why.
set -euo pipefail
cd "$(dirname "$0")/.."

regex='unit/test_(rpc|service|redis|item_cache|record_cache|metrics|log|reflection|list_cache|recall|filter|rank|twotower|vindex_io|mmoe|nn_io)|unit/test_(orch_|feedback|merge|report)|unit/test_consumer|unit/test_loadgen'
if [ "${1:-}" = "--all" ]; then
  shift
  regex=''
fi

build_dir=build-tsan
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASCADE_TSAN=ON >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
# second_deadlock_stack: both stacks in a lock-order report; history_size: older
# accesses kept, so both sides of a race are shown.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 suppressions=$PWD/tests/tsan.supp${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
if [ -n "$regex" ]; then
  ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" -R "$regex" "$@"
else
  ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
fi
