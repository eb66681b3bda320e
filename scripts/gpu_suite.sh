#!/usr/bin/env bash
# Runs kiln's GPU test suite from the bundle that scripts/gpu_bundle.sh made (docs/cuda-testing.md). Run it ON the
# GPU host, from the repository root, with $OUT set (logs go there; default .gpu/out):
#
#   scripts/gpu_suite.sh [--memcheck-filter GTEST_FILTER] [--only STEPS] [--shards N] [--jobs N]
#                        [--gtest-filter GTEST_FILTER] [--bundle FILE] [--torchbench-args "ARGS"]
#
# STEPS, comma-separated (default tests,backend,conformance,memcheck):
#   tests        kiln_tests, all of it (GPU tests included), in N parallel gtest shards   -> $OUT/kiln_tests.log
#   backend      the EngineBackend tests again with KILN_TEST_DEVICE=cuda:0              -> $OUT/backend_cuda.log
#   conformance  kiln_conformance --target cuda:0 on the bundled node tests               -> $OUT/conformance_cuda.{log,json}
#   memcheck     compute-sanitizer memcheck on kiln_tests --gtest_filter=MEMCHECK_FILTER  -> $OUT/memcheck.log
#   bench        kiln_cuda_microbench (bandwidth table)                                   -> $OUT/microbench.md
#   torchbench   bench/gpu_vs_torch.py with the bundle's libkiln.so (kiln vs PyTorch)   -> $OUT/torchbench.{md,json,log}
#                (not by default; ARGS go to the script, e.g. "--models resnet50"; python: $KILN_TORCH_PYTHON or python3)
# Each step runs under a time limit (KILN_SUITE_TIMEOUT_<STEP> seconds; defaults below) so that the whole command
# stays inside the device's 10 minutes. The summary table is printed last and written to $OUT/summary.md. Exit 0 when
# every step that ran passed (or skipped for want of a GPU), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/.gpu/out}
BUNDLE=$ROOT/.gpu/kiln-gpu.tar.gz
WORK=${KILN_BUNDLE_DIR:-/tmp/kiln-gpu-suite}
STEPS=tests,backend,conformance,memcheck
MEMCHECK_FILTER=${KILN_MEMCHECK_FILTER:-*RealArch*}
GTEST_FILTER_ALL=${KILN_GTEST_FILTER:-*}
NCPU=$(nproc 2>/dev/null || echo 2)
SHARDS=${KILN_SUITE_SHARDS:-$((NCPU < 8 ? NCPU : 8))}
JOBS=${KILN_SUITE_JOBS:-$((NCPU < 8 ? NCPU : 8))}
T_TESTS=${KILN_SUITE_TIMEOUT_TESTS:-400}
T_BACKEND=${KILN_SUITE_TIMEOUT_BACKEND:-120}
T_CONF=${KILN_SUITE_TIMEOUT_CONFORMANCE:-150}
T_MEMCHECK=${KILN_SUITE_TIMEOUT_MEMCHECK:-200}
T_BENCH=${KILN_SUITE_TIMEOUT_BENCH:-120}
T_TORCHBENCH=${KILN_SUITE_TIMEOUT_TORCHBENCH:-560}
TORCHBENCH_ARGS=${KILN_TORCHBENCH_ARGS:-}

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --memcheck-filter) MEMCHECK_FILTER=${2:?}; shift 2 ;;
    --only) STEPS=${2:?}; shift 2 ;;
    --shards) SHARDS=${2:?}; shift 2 ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --gtest-filter) GTEST_FILTER_ALL=${2:?}; shift 2 ;;
    --bundle) BUNDLE=${2:?}; shift 2 ;;
    --torchbench-args) TORCHBENCH_ARGS=${2?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "gpu_suite: unknown argument $1" >&2; usage ;;
  esac
done
want() { [[ ",$STEPS," == *",$1,"* ]]; }

mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
rows=()
overall=0
row() { rows+=("| $1 | $2 | $3 | $4 s |"); case "$2" in PASS|SKIP) ;; *) overall=1 ;; esac; }
now() { date +%s; }

# ---- unpack (skipped when this bundle is already unpacked in $WORK) --------------------------------------------
[ -f "$BUNDLE" ] || { echo "gpu_suite: no bundle at $BUNDLE (make it with scripts/gpu_bundle.sh and carry .gpu)" >&2; exit 1; }
sum=$(sha256sum "$BUNDLE" | cut -d' ' -f1)
if [ "$(cat "$WORK/.sha256" 2>/dev/null)" != "$sum" ]; then
  rm -rf "$WORK"
  mkdir -p "$WORK"
  tar -C "$WORK" -xzf "$BUNDLE" || { echo "gpu_suite: cannot unpack $BUNDLE" >&2; exit 1; }
  echo "$sum" > "$WORK/.sha256"
fi
B=$WORK/kiln-gpu

# ---- environment -----------------------------------------------------------------------------------------------
export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing() { ldd "$B/bin/kiln_tests" "$B/lib/libkiln.so" 2>/dev/null | awk '/not found/ {print $1}' | sort -u; }
if [ -n "$(missing)" ]; then
  # CUDA libraries (cuBLASLt, cuDNN) outside the loader's path: the toolkit's folders, then pip's nvidia-* wheels.
  cands=(/usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu)
  if command -v python3 >/dev/null; then
    for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
      for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && cands+=("$d"); done
    done
  fi
  for lib in $(missing); do
    for d in "${cands[@]}"; do
      if [ -e "$d/$lib" ]; then export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"; break; fi
    done
  done
fi
export KILN_TEST_MODELS=$B/test_models KILN_SOURCE_DIR=$ROOT KILN_CLI=$B/bin/kiln
if [ -z "${KILN_PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then KILN_PYTHON=$ROOT/.venv/bin/python; else KILN_PYTHON=$(command -v python3 || echo python3); fi
fi
export KILN_PYTHON

{
  echo "# kiln GPU suite — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo '```'
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/driver: /'
  else
    echo "nvidia-smi: not available on this machine"
  fi
  "$B/bin/kiln" --version
  "$B/bin/kiln" devices
  echo "bundle: $(sed -n 's/^commit: *//p' "$B/MANIFEST.txt")"
  ldd "$B/lib/libkiln.so" | awk '/libcudnn\.so|libcublasLt\.so|libprotobuf|libcrypto/ {print $1 " => " $3}' | while read -r l a p; do
    echo "$l => $(readlink -f "$p" 2>/dev/null || echo "$p")"
  done
  echo '```'
} > "$OUT/header.txt" 2>&1
cat "$OUT/header.txt"
if [ -n "$(missing)" ]; then
  echo "gpu_suite: shared libraries not found: $(missing | tr '\n' ' ')" | tee -a "$OUT/header.txt" >&2
fi
NDEV=$("$B/bin/kiln" devices --json 2>/dev/null | grep -c '"cuda:' || true)

# ---- kiln_tests, in parallel shards ------------------------------------------------------------------------------
if want tests; then
  t=$(now)
  mkdir -p "$WORK/logs"
  rm -f "$WORK"/logs/shard_*.log
  pids=()
  for ((i = 0; i < SHARDS; i++)); do
    GTEST_TOTAL_SHARDS=$SHARDS GTEST_SHARD_INDEX=$i timeout -k 10 "$T_TESTS" \
      "$B/bin/kiln_tests" --gtest_filter="$GTEST_FILTER_ALL" --gtest_color=no > "$WORK/logs/shard_$i.log" 2>&1 &
    pids+=($!)
  done
  rcs=0
  bad_shards=()
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; rc=$?
    case $rc in
      0|1) ;;  # 1: gtest reports failed tests
      124|137) bad_shards+=("shard $i timed out after $T_TESTS s") ;;
      *) bad_shards+=("shard $i exited with $rc (crash?)") ;;
    esac
    [ $rc -ne 0 ] && rcs=1
  done
  : > "$OUT/kiln_tests.log"
  for ((i = 0; i < SHARDS; i++)); do
    echo "===== shard $i of $SHARDS =====" >> "$OUT/kiln_tests.log"
    cat "$WORK/logs/shard_$i.log" >> "$OUT/kiln_tests.log"
  done
  count() { grep -h "^$1 [0-9]* test" "$WORK"/logs/shard_*.log | sed "s/^$1 \([0-9]*\) test.*/\1/" | awk '{s += $1} END {print s + 0}'; }
  grep -h '^\[  FAILED  \] ' "$WORK"/logs/shard_*.log | grep -v 'listed below' \
    | sed 's/^\[  FAILED  \] \([^ ,]*\).*/\1/' | sort -u > "$WORK/failed.txt"
  npass=$(count '\[  PASSED  \]')
  nfail=$(wc -l < "$WORK/failed.txt")
  nskip=$(count '\[  SKIPPED \]')
  gpu_skips=$(grep -h -c 'no CUDA device' "$WORK"/logs/shard_*.log | awk '{s += $1} END {print s + 0}')
  detail="$npass passed, $nfail failed, $nskip skipped ($gpu_skips 'no CUDA device' lines); $SHARDS shards"
  for b in "${bad_shards[@]}"; do detail="$detail; $b"; done
  if [ $rcs -eq 0 ]; then res=PASS; else res=FAIL; fi
  row "kiln_tests (filter $GTEST_FILTER_ALL)" "$res" "$detail" $(($(now) - t))
fi

# ---- the backend contract's tests on cuda:0 ----------------------------------------------------------------------
if want backend; then
  t=$(now)
  if [ "$NDEV" -eq 0 ]; then
    echo "skipped: no CUDA device" > "$OUT/backend_cuda.log"
    row "backend tests, KILN_TEST_DEVICE=cuda:0" SKIP "no CUDA device" $(($(now) - t))
  else
    KILN_TEST_DEVICE=cuda:0 timeout -k 10 "$T_BACKEND" "$B/bin/kiln_tests" --gtest_filter='Backend*' --gtest_color=no \
      > "$OUT/backend_cuda.log" 2>&1
    rc=$?
    np=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$OUT/backend_cuda.log")
    nf=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$OUT/backend_cuda.log")
    detail="${np:-0} passed, ${nf:-0} failed"
    case $rc in
      0) res=PASS ;;
      124|137) res=FAIL; detail="$detail; TIMED OUT after $T_BACKEND s" ;;
      *) res=FAIL ;;
    esac
    row "backend tests, KILN_TEST_DEVICE=cuda:0" "$res" "$detail" $(($(now) - t))
  fi
fi

# ---- conformance on CUDA -----------------------------------------------------------------------------------------
if want conformance; then
  t=$(now)
  timeout -k 10 "$T_CONF" "$B/bin/kiln_conformance" --data "$B/onnx_node_tests" --target cuda:0 --jobs "$JOBS" \
    --skips tests/conformance/skips.txt --skips tests/conformance/skips_cuda.txt --floor tests/conformance/floor_cuda.txt \
    --tolerances tests/conformance/tolerances.txt --json "$OUT/conformance_cuda.json" > "$OUT/conformance_cuda.log" 2>&1
  rc=$?
  line=$(grep '^conformance: ' "$OUT/conformance_cuda.log" | tail -1)
  case $rc in
    0) res=PASS ;;
    77) res=SKIP; line=$(grep '^skipped' "$OUT/conformance_cuda.log" | head -1) ;;
    124|137) res=FAIL; line="TIMED OUT after $T_CONF s" ;;
    *) res=FAIL ;;
  esac
  [ -z "$line" ] && line="exit $rc (see conformance_cuda.log)"
  row "conformance --target cuda:0" "$res" "$line" $(($(now) - t))
fi

# ---- compute-sanitizer memcheck ----------------------------------------------------------------------------------
if want memcheck; then
  t=$(now)
  CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
  if [ "$NDEV" -eq 0 ]; then
    echo "skipped: no CUDA device" > "$OUT/memcheck.log"
    row "memcheck ($MEMCHECK_FILTER)" SKIP "no CUDA device" $(($(now) - t))
  elif [ -z "$CS" ]; then
    echo "compute-sanitizer not found" > "$OUT/memcheck.log"
    row "memcheck ($MEMCHECK_FILTER)" FAIL "compute-sanitizer not found" $(($(now) - t))
  else
    # No CUDA tactic timing under memcheck (every candidate of every GEMM / conv run ~100 times would not finish).
    KILN_CUDA_TACTIC_TIMING=0 timeout -k 10 "$T_MEMCHECK" "$CS" --tool memcheck --error-exitcode 97 --print-limit 100 \
      "$B/bin/kiln_tests" --gtest_filter="$MEMCHECK_FILTER" --gtest_color=no > "$OUT/memcheck.log" 2>&1
    rc=$?
    ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\? from .* ran.*/\1/p' "$OUT/memcheck.log" | tail -1)
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$OUT/memcheck.log" | tail -1)
    detail="${ran:-0} tests, ${errs:-?} memcheck errors"
    case $rc in
      0) res=PASS; [ "${ran:-0}" -eq 0 ] && { res=SKIP; detail="no test matches the filter (give --memcheck-filter)"; } ;;
      97) res=FAIL ;;
      124|137) res=FAIL; detail="$detail; TIMED OUT after $T_MEMCHECK s" ;;
      *) res=FAIL; detail="$detail; exit $rc (test failures?)" ;;
    esac
    row "memcheck ($MEMCHECK_FILTER)" "$res" "$detail" $(($(now) - t))
  fi
fi

# ---- microbenchmark ----------------------------------------------------------------------------------------------
if want bench; then
  t=$(now)
  if [ "$NDEV" -eq 0 ]; then
    echo "skipped: no CUDA device" > "$OUT/microbench.md"
    row "cuda_microbench" SKIP "no CUDA device" $(($(now) - t))
  else
    timeout -k 10 "$T_BENCH" "$B/bin/kiln_cuda_microbench" > "$OUT/microbench.md" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then res=PASS; else res=FAIL; fi
    row "cuda_microbench" "$res" "$(grep -c '^| [A-Z]' "$OUT/microbench.md") table rows; exit $rc" $(($(now) - t))
  fi
fi

# ---- kiln against PyTorch (bench/gpu_vs_torch.py, docs/benchmarks.md) -------------------------------------------
if want torchbench; then
  t=$(now)
  TPY=${KILN_TORCH_PYTHON:-python3}
  if [ "$NDEV" -eq 0 ]; then
    echo "skipped: no CUDA device" > "$OUT/torchbench.log"
    row "torchbench" SKIP "no CUDA device" $(($(now) - t))
  elif ! "$TPY" -c 'import torch, numpy' > "$OUT/torchbench.log" 2>&1; then
    row "torchbench" FAIL "$TPY cannot import torch and numpy (see torchbench.log)" $(($(now) - t))
  else
    mkdir -p "$WORK/torchbench"
    # The script keeps itself inside --budget (a model's process gets what is left) and always writes the table.
    # shellcheck disable=SC2086
    timeout -k 10 "$T_TORCHBENCH" "$TPY" bench/gpu_vs_torch.py --kiln-lib "$B/lib/libkiln.so" \
      --out "$OUT/torchbench.md" --work "$WORK/torchbench" --budget $((T_TORCHBENCH - 20)) $TORCHBENCH_ARGS \
      > "$OUT/torchbench.log" 2>&1
    rc=$?
    met=$(grep -c '| met |' "$OUT/torchbench.md" 2>/dev/null)
    notmet=$(grep -c '| not met |' "$OUT/torchbench.md" 2>/dev/null)
    failed=$(grep -c '| failed: ' "$OUT/torchbench.md" 2>/dev/null)
    checkfail=$(grep -c '| FAIL |' "$OUT/torchbench.md" 2>/dev/null)
    detail="targets met ${met:-0}, not met ${notmet:-0}; ${failed:-0} failed rows; ${checkfail:-0} kiln output checks failed"
    case $rc in
      0) res=PASS; [ "${checkfail:-0}" -gt 0 ] && res=FAIL ;;
      124|137) res=FAIL; detail="$detail; TIMED OUT after $T_TORCHBENCH s" ;;
      *) res=FAIL; detail="$detail; exit $rc" ;;
    esac
    # A model's own log says why its process failed: bring the logs back with the table.
    if [ "$res" = FAIL ]; then
      for l in "$WORK"/torchbench/*.log; do [ -f "$l" ] && cp "$l" "$OUT/torchbench-$(basename "$l")"; done
    fi
    row "torchbench ${TORCHBENCH_ARGS:-(default)}" "$res" "$detail" $(($(now) - t))
  fi
fi

# ---- summary -----------------------------------------------------------------------------------------------------
{
  cat "$OUT/header.txt"
  echo
  echo "| step | result | details | time |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  if [ -s "$WORK/failed.txt" ]; then
    echo
    echo "failed tests (first 40 of $(wc -l < "$WORK/failed.txt")):"
    head -40 "$WORK/failed.txt" | sed 's/^/    /'
  fi
} > "$SUMMARY"
rm -f "$OUT/header.txt" "$WORK/failed.txt"
echo
echo "==== kiln GPU suite summary ($SUMMARY) ===="
sed -n '/^| step/,$p' "$SUMMARY"
exit $overall
