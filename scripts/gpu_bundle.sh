#!/usr/bin/env bash
# Builds the GPU test bundle, .gpu/kiln-gpu.tar.gz, on the development machine (docs/cuda-testing.md).
#
# Release build with CUDA (sm_90 + PTX) whose test binaries link ONE stripped shared library, libkiln.so
# (-DKILN_TESTS_LINK_SHARED=ON), then packs what the GPU host needs that the repository does not carry:
#   bin/   kiln_tests, kiln_conformance, kiln (CLI), kiln_cuda_microbench
#   lib/   libkiln.so and every shared library they need that an Ubuntu 24.04 host with CUDA 13 + cuDNN 9 lacks
#          (libprotobuf.so.32 from Debian 12, libcudart.so.13, ...: everything ldd resolves except glibc,
#          libstdc++/libgcc, zlib, the CUDA driver, cuBLAS/cuBLASLt, NVRTC and cuDNN)
#   test_models/  onnx_node_tests/   the generated test models and ONNX node-test data
#   MANIFEST.txt  commit, build id, what was bundled and what the host must provide
# The tarball must stay under KILN_BUNDLE_LIMIT_MB (60). scripts/gpu_suite.sh unpacks and runs it on the device.
#
# Environment: KILN_BUNDLE_BUILD (build folder, default build-gpu), KILN_JOBS (default 2),
#              KILN_BUNDLE_LIMIT_MB (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${KILN_BUNDLE_BUILD:-build-gpu}
JOBS=${KILN_JOBS:-2}
LIMIT_MB=${KILN_BUNDLE_LIMIT_MB:-60}
OUTDIR=$ROOT/.gpu
TARBALL=$OUTDIR/kiln-gpu.tar.gz
STAGE=$OUTDIR/stage/kiln-gpu
export PATH=/usr/local/cuda/bin:$PATH
t0=$(date +%s)
phase() { local now; now=$(date +%s); echo "[time] $1: $((now - t0)) s"; t0=$now; }
die() { echo "gpu_bundle: error: $*" >&2; exit 1; }

mkdir -p "$OUTDIR"
[ -x .venv/bin/python ] || bash scripts/setup.sh  # the data generators need the project's Python

# ---- build -----------------------------------------------------------------------------------------------------
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" -DKILN_TESTS_LINK_SHARED=ON -DKILN_BUILD_BENCH=ON -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON \
  > "$OUTDIR/configure.log" 2>&1 || { cat "$OUTDIR/configure.log"; die "configure failed"; }
grep -q "kiln: CUDA ON" "$OUTDIR/configure.log" || die "CUDA is not enabled in $BUILD (no CUDA toolkit?)"
cmake --build "$BUILD" -j"$JOBS" --target kiln kiln_cli kiln_tests kiln_conformance kiln_cuda_microbench
phase build

# ---- generated test data (the ctest fixtures that write it) ---------------------------------------------------
ctest --test-dir "$BUILD" -R '^(gen_.*|conformance_data)$' -j"$JOBS" --output-on-failure > "$OUTDIR/data.log" 2>&1 \
  || { cat "$OUTDIR/data.log"; die "generating the test data failed"; }
[ -d "$BUILD/test_models" ] || die "no $BUILD/test_models"
[ -d "$BUILD/onnx_node_tests" ] || die "no $BUILD/onnx_node_tests"
phase "test data"

# ---- stage -----------------------------------------------------------------------------------------------------
rm -rf "$OUTDIR/stage"
mkdir -p "$STAGE/bin" "$STAGE/lib"
cp "$BUILD/tests/kiln_tests" "$BUILD/tests/kiln_conformance" "$BUILD/tools/kiln" "$BUILD/bench/kiln_cuda_microbench" \
   "$STAGE/bin/"
soname=$(readelf -d "$BUILD/libkiln.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] || die "libkiln.so has no SONAME"
cp -L "$BUILD/libkiln.so" "$STAGE/lib/$soname"
ln -s "$soname" "$STAGE/lib/libkiln.so"
strip --strip-unneeded "$STAGE/lib/$soname"
strip --strip-unneeded "$STAGE"/bin/*

# Every binary must take kiln from libkiln.so (not a static copy of kiln_core).
# (grep -c, not grep -q: with pipefail, grep -q closing the pipe early would fail the pipeline.)
for b in "$STAGE"/bin/*; do
  [ "$(readelf -d "$b" | grep -c "NEEDED.*\[$soname\]")" -gt 0 ] \
    || die "$(basename "$b") does not link $soname (KILN_TESTS_LINK_SHARED?)"
done
[ "$(nm -D --defined-only "$STAGE/lib/$soname" | grep -c "run_graph_reference")" -gt 0 ] \
  || die "$soname does not export kiln's internal symbols (the tests need them)"
[ "$(nm -D --defined-only "$STAGE/lib/$soname" | grep -c " T kiln_context_enqueue$")" -gt 0 ] \
  || die "$soname does not export the C API (kiln_context_enqueue; bench/gpu_vs_torch.py needs it)"

# Shared libraries the GPU host is expected to have; everything else ldd resolves is bundled.
HOST_LIBS='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so|libz\.so|libcuda\.so|libcublas|libcudnn|libnvrtc|libnvJitLink|libnvidia-)'
bundled=()
host=()
for b in "$STAGE"/bin/* "$STAGE/lib/$soname"; do
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    [ "$path" = "not" ] && die "$(basename "$b"): $name not found here"
    case "$name" in "$soname") continue ;; esac
    if [[ "$name" =~ $HOST_LIBS ]]; then
      host+=("$name")
    elif [ ! -e "$STAGE/lib/$name" ]; then
      cp -L "$path" "$STAGE/lib/$name"
      chmod u+w "$STAGE/lib/$name"
      strip --strip-unneeded "$STAGE/lib/$name" 2>/dev/null || true
      bundled+=("$name ($path)")
    fi
  done < <(LD_LIBRARY_PATH="$STAGE/lib" ldd "$b")
done

cp -r "$BUILD/test_models" "$STAGE/test_models"
cp -r "$BUILD/onnx_node_tests" "$STAGE/onnx_node_tests"

{
  echo "kiln GPU test bundle (scripts/gpu_bundle.sh; run with scripts/gpu_suite.sh, docs/cuda-testing.md)"
  echo "made:      $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "commit:    $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.gpu' 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "version:   $(LD_LIBRARY_PATH="$STAGE/lib" "$STAGE/bin/kiln" --version)"
  echo "cuda:      $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), architectures 90-real;90-virtual"
  echo "bundled libraries:"
  for l in "${bundled[@]}"; do echo "  $l"; done
  echo "expected on the host:"
  printf '%s\n' "${host[@]}" | sort -u | sed 's/^/  /'
  echo "files:"
  (cd "$STAGE" && find bin lib -type f -printf '  %p %s\n' | sort)
  echo "  test_models: $(find "$STAGE/test_models" -type f | wc -l) files, onnx_node_tests: $(find "$STAGE/onnx_node_tests" -name model.onnx | wc -l) tests"
} > "$STAGE/MANIFEST.txt"

# ---- pack ------------------------------------------------------------------------------------------------------
rm -f "$TARBALL"
tar -C "$OUTDIR/stage" -cf - kiln-gpu | gzip -9 > "$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
sha256sum "$TARBALL" | cut -d' ' -f1 > "$TARBALL.sha256"
phase pack

size=$(stat -c %s "$TARBALL")
cat "$STAGE/MANIFEST.txt" | sed -n '1,/^files:/p' | sed '$d'
echo "bundle: $TARBALL $((size / 1024 / 1024)) MiB ($size bytes; limit $LIMIT_MB MiB)"
[ "$size" -lt $((LIMIT_MB * 1024 * 1024)) ] || die "the bundle is over $LIMIT_MB MiB"
rm -rf "$OUTDIR/stage"
