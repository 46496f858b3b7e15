#!/usr/bin/env bash
# The GPU machine reaches no package registry. This downloads (here, on Debian) the header-only
# Debian packages the engine's build and tests need into .gpudeps/ (git-ignored), which the device
# run carries and scripts/gpu-check.sh unpacks into a private prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpudeps
cd .gpudeps
for p in catch2 nlohmann-json3-dev libcli11-dev; do
  ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p"
done
ls -la
