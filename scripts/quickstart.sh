#!/usr/bin/env bash
# Quick start: installs what is missing, builds kiln, then builds an engine for the bundled model,
# runs it once and benchmarks it. Uses the GPU when kiln has a CUDA executor and a GPU is present, else the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target kiln_cli
KILN=build/tools/kiln
MODEL=models/kiln_demo_cnn.onnx
DEVICE=cpu
echo "== kiln build $MODEL (device $DEVICE)"
$KILN build "$MODEL" -o build/kiln_demo_cnn.kiln --shapes input:1x3x64x64 --device "$DEVICE"
echo "== kiln run (random input, seed 0)"
$KILN run build/kiln_demo_cnn.kiln --seed 0
echo "== kiln bench"
$KILN bench build/kiln_demo_cnn.kiln --iterations 50
