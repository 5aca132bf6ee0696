#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in their
# own build directory and run each one for a share of the time budget,
# printing executions per target and any crash. See docs/stages.md, "Fuzzing".
#
#   scripts/fuzz.sh [--seconds N] [--target NAME] [--build-dir DIR] [--jobs J]
#
# --seconds N   total time budget (default 60), split evenly over the targets
# --target NAME run only this target (all N seconds); names as in
#               tests/fuzz/fuzz_targets.c, e.g. recall_request, item_record
# --build-dir   default build-fuzz (the corpus grows in DIR/fuzz-corpus/<target>,
#               crashes land in DIR/fuzz-artifacts/<target>/)
# --jobs J      build parallelism (default 2)
# Exit status: 0 when no target crashed, 1 when one did, 2 on a usage or
# build error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
only=""
build="$root/build-fuzz"
jobs=2
targets=(recall_request filter_request record_exposure_request prerank_request rank_request
         rerank_request recommend_request feedback_request item_record user_record interaction
         neighbour_list user_neighbour_list)

usage() { sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --target) only=${2:?--target needs a name}; shift 2 ;;
    --build-dir) build=${2:?--build-dir needs a path}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; usage ;;
  esac
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2 ;; esac
[ "$seconds" -gt 0 ] || { echo "fuzz.sh: --seconds must be positive" >&2; exit 2; }
if [ -n "$only" ]; then
  found=0
  for t in "${targets[@]}"; do [ "$t" = "$only" ] && found=1; done
  [ $found = 1 ] || { echo "fuzz.sh: unknown target $only (known: ${targets[*]})" >&2; exit 2; }
  targets=("$only")
fi

# clang and its libFuzzer runtime are needed here only, not in the normal
# build, so they are installed on demand rather than by install-deps.sh.
fuzzer_rt=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if ! command -v clang >/dev/null || [ ! -f "$fuzzer_rt" ]; then
  echo "fuzz.sh: installing clang and libclang-rt-14-dev"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi

CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCASCADE_FUZZ=ON >/dev/null \
  || { echo "fuzz.sh: cmake failed" >&2; exit 2; }
build_targets=(cascade-fuzz-seeds)
for t in "${targets[@]}"; do build_targets+=("cascade-fuzz-${t//_/-}"); done
cmake --build "$build" -j"$jobs" --target "${build_targets[@]}" >"$build/fuzz-build.log" 2>&1 \
  || { tail -30 "$build/fuzz-build.log" >&2; echo "fuzz.sh: build failed (log: $build/fuzz-build.log)" >&2; exit 2; }

seeds="$build/fuzz-seeds"
rm -rf "$seeds"
"$build/bin/cascade-fuzz-seeds" "$seeds"

per=$(( seconds / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
crashed=0
printf '%-26s %12s %8s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dirs=("$corpus" "$seeds/$t")
  [ -d "$root/tests/fuzz/regress/$t" ] && dirs+=("$root/tests/fuzz/regress/$t")
  set +e
  "$build/fuzz/cascade-fuzz-${t//_/-}" -max_total_time="$per" -timeout=10 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  size=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    crashed=1
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    result="CRASH (exit $rc) ${crash:-see $log}"
  fi
  printf '%-26s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$size" "$result"
  if [ $rc -ne 0 ]; then
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log" >&2 || true
  fi
done
exit $crashed
