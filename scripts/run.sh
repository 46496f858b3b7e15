#!/usr/bin/env bash
# README command 1: installs what is needed, builds, and runs the main job. Until the desktop app
# lands this is avs-gen end to end on the tiny config (random weights, CPU or GPU), writing the
# latents to out/latents.safetensors. Extra arguments go to avs-gen.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${AVS_BUILD_DIR:-build}"
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)" --target avs-gen
mkdir -p out
exec "$build/tools/avs_gen/avs-gen" --random-init --config tiny --seed 1 --chunks 8 --window 6 --sinks 1 \
  --rope-mode window --dump-latents out/latents.safetensors "$@"
