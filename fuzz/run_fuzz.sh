#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) into BUILD_DIR and runs each for SECONDS on
# a copy of its seed corpus. Crashers go to fuzz/crashers/<target>/ (commit them: the regression
# test replays them). Exit status: 0 clean, 1 a target crashed, 2 build failure, 77 clang missing.
#
#   fuzz/run_fuzz.sh BUILD_DIR SECONDS
#
# Environment: KILN_FUZZ_CC / KILN_FUZZ_CXX (default clang-14 / clang++-14), KILN_FUZZ_JOBS (default 2),
# KILN_FUZZ_TARGETS (default "fuzz_plan_loader fuzz_onnx_importer").
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
BUILD=$1
SECS=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC_BIN=${KILN_FUZZ_CC:-clang-14}
CXX_BIN=${KILN_FUZZ_CXX:-clang++-14}
JOBS=${KILN_FUZZ_JOBS:-2}
TARGETS=${KILN_FUZZ_TARGETS:-"fuzz_plan_loader fuzz_onnx_importer"}

if ! command -v "$CXX_BIN" >/dev/null 2>&1 || ! command -v "$CC_BIN" >/dev/null 2>&1; then
  echo "fuzz: skipped: $CXX_BIN not found (apt-get install clang-14 libclang-rt-14-dev)"
  exit 77
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  GEN=()
  command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
  CC=$CC_BIN CXX=$CXX_BIN cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_FUZZ=ON -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_TOOLS=OFF \
    -DKILN_WITH_CUDA=OFF -DKILN_WERROR=OFF || { echo "fuzz: configure failed" >&2; exit 2; }
fi
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$JOBS" --target $TARGETS || { echo "fuzz: build failed" >&2; exit 2; }

corpus_of() {
  case $1 in
    fuzz_plan_loader) echo plan ;;
    fuzz_onnx_importer) echo onnx ;;
    *) echo "${1#fuzz_}" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in $TARGETS; do
  bin="$BUILD/fuzz/$t"
  work="$BUILD/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  seeds="$ROOT/fuzz/corpus/$(corpus_of "$t")"
  [ -d "$seeds" ] && cp "$seeds"/* "$work/corpus/" 2>/dev/null
  crashdir="$ROOT/fuzz/crashers/$t"
  mkdir -p "$crashdir"
  before=$(find "$crashdir" -type f | wc -l)
  "$bin" -seed=1 -max_len=65536 -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashdir/" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  after=$(find "$crashdir" -type f | wc -l)
  runs=$(grep -o 'Done [0-9]* runs' "$work/log" | tail -1 | awk '{print $2}')
  [ -z "$runs" ] && runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | awk '{print $2}')
  echo "$t: Done ${runs:-?} runs in ${SECS} s, coverage ${cov:-?}, exit $rc, new crashers $((after - before)) (log $work/log)"
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    status=1
    tail -n 60 "$work/log"
  fi
  rmdir "$crashdir" 2>/dev/null  # keep no empty folders
done
rmdir "$ROOT/fuzz/crashers" 2>/dev/null
exit $status
