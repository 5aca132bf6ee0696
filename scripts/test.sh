#!/usr/bin/env bash
# The README's test command: install the Debian packages, configure, build everything (warnings are
# errors) and run the whole suite through ctest — cmocka unit tests, the
# integration tests (real redis-server + all six services on loopback ports)
# and the interop test (python3-grpcio client built from our .proto files).
# Usage: scripts/test.sh [--sanitize] [extra ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Release (-O3): CI covers an optimised build, where gcc's -Wformat-truncation
# and friends see more than at -O2.
build_dir=build-release
cmake_args=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DCASCADE_SANITIZE=ON)
  # Third-party leaks only (tests/lsan.supp says which and why).
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi

# Idempotent and quick when everything is present; makes this command work on
# a fresh Debian machine on its own.
bash scripts/install-deps.sh

start=$(date +%s)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
built=$(date +%s)
echo "test: build took $((built - start)) s"
# A test that hangs prints its threads' stacks before ctest's timeout kills it.
bash scripts/test-watchdog.sh "$build_dir" &
watchdog=$!
trap 'kill "$watchdog" 2>/dev/null || true' EXIT
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
echo "test: suite took $(( $(date +%s) - built )) s"
