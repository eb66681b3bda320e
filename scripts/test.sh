#!/usr/bin/env bash
# The test command: installs what is missing, builds kiln (CUDA-enabled configuration when the toolkit is
# present, plus the CPU-only library so neither rots) and runs every test with ctest.
# Prints per-phase times. Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
JOBS=${KILN_JOBS:-$(nproc)}
t0=$(date +%s)
phase() { local now; now=$(date +%s); echo "[time] $1: $((now - t0)) s"; t0=$now; }

bash scripts/setup.sh
phase install

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON > build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
grep -E "kiln: CUDA" build-configure.log || true
# The CUDA part first, timed on its own (issue budget: under 10 minutes on 2 cores): every object compiled from
# src/runtime/cuda/ (the .cu kernels and the executor's host code that includes the CUDA headers).
cuda_objs=$(cd build && ninja -t targets all 2>/dev/null | grep -oE '^CMakeFiles/kiln_core\.dir/src/runtime/cuda/[^:]+\.o' | sort -u || true)
if [ -n "$cuda_objs" ]; then
  # shellcheck disable=SC2086
  (cd build && ninja -j"$JOBS" $cuda_objs)
  phase "build (CUDA sources: $(echo "$cuda_objs" | wc -w) objects)"
fi
cmake --build build -j"$JOBS"
phase "build (main configuration, rest)"

cmake -S . -B build-cpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WITH_CUDA=OFF -DKILN_BUILD_TESTS=OFF \
  -DKILN_BUILD_TOOLS=OFF -DKILN_WERROR=ON > build-cpu-configure.log 2>&1 || { cat build-cpu-configure.log; exit 1; }
cmake --build build-cpu -j"$JOBS" --target kiln
phase "build (CPU-only library)"

(cd build && ctest --output-on-failure -j"$JOBS" "$@")
phase test
