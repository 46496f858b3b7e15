#!/usr/bin/env bash
# README command 1: installs what is needed, builds, and launches the app (`avatarstream`) on the
# default model (the embedded avatar in assets/, on the GPU when there is one, else the
# CPU), listening to the default microphone (a WAV file or silence when there is none). Without a
# display it runs headless for 10 s and records out/avatarstream.mp4. Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --app
build="${AVS_BUILD_DIR:-build}"
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DAVS_BUILD_APP=ON
cmake --build "$build" -j "$(nproc)" --target avatarstream
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec "$build/app/avatarstream" "$@"
fi
echo "run.sh: no display: running headless for 10 s (pass your own flags to change that)"
mkdir -p out
exec "$build/app/avatarstream" --headless --seconds 10 --record out/avatarstream.mp4 "$@"
