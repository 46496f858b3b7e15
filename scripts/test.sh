#!/usr/bin/env bash
# Builds everything and runs every test (README command 2; .ci/run calls exactly this).
# CUDA code is compiled for one architecture here (AVS_CUDA_ARCHS, default 90a) to keep CI fast;
# `cuda` tests report as skipped on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --app
build="${AVS_BUILD_DIR:-build}"
cmake_args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release)
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="$PATH:/usr/local/cuda/bin"
  cmake_args+=(-DAVS_CUDA_ARCHS="${AVS_CUDA_ARCHS:-90a}")
fi
cmake "${cmake_args[@]}"
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
