#!/usr/bin/env bash
# On the GPU machine: build the engine (no app dependencies there), run every `cuda` test and the
# benchmarks, and write logs and results under $OUT (default ./out). Header-only build dependencies
# come from .gpudeps/ (scripts/fetch-gpu-deps.sh, run where Debian's apt works).
#   scripts/gpu-check.sh [--arch 90a] [--no-bench]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT"
arch=90a
bench=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --no-bench) bench=0; shift ;;
    *) echo "gpu-check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

prefix=/tmp/avs-deps
if [ -d .gpudeps ]; then
  mkdir -p "$prefix"
  for f in .gpudeps/*.deb; do dpkg -x "$f" "$prefix"; done
fi
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

build=build-gpu
# OpenBLAS is not on the GPU machine: the CPU twin uses its own GEMM there.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAVS_CUDA=ON -DAVS_CUDA_ARCHS="$arch" \
  -DAVS_BUILD_APP=OFF -DAVS_FUZZ=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenBLAS=ON \
  -DCMAKE_PREFIX_PATH="$prefix/usr" 2>&1 | tee "$OUT/configure.log"
cmake --build "$build" -j "$(nproc)" 2>&1 | tee "$OUT/build.log" | tail -n 5
set +e
ctest --test-dir "$build" -L cuda --output-on-failure 2>&1 | tee "$OUT/ctest-cuda.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$bench" = 1 ] && [ -x "$build/bench/avs-bench" ]; then
  "$build/bench/avs-bench" --out "$OUT" 2>&1 | tee "$OUT/bench.log"
fi
exit "$rc"
