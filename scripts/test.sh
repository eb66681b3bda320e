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
cmake --build build -j"$JOBS"
phase "build (main configuration)"

cmake -S . -B build-cpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WITH_CUDA=OFF -DKILN_BUILD_TESTS=OFF \
  -DKILN_BUILD_TOOLS=OFF -DKILN_WERROR=ON > build-cpu-configure.log 2>&1 || { cat build-cpu-configure.log; exit 1; }
cmake --build build-cpu -j"$JOBS" --target kiln
phase "build (CPU-only library)"

(cd build && ctest --output-on-failure -j"$JOBS" "$@")
phase test
