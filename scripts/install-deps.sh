#!/usr/bin/env bash
# Installs the Debian 12 packages AvatarStream needs. Idempotent and non-interactive.
#   scripts/install-deps.sh            engine, tools and tests (what CI needs)
#   scripts/install-deps.sh --app      + the desktop app's libraries (Vulkan, GLFW, PortAudio, FFmpeg)
#   scripts/install-deps.sh --reference + PyTorch for tools/reference (regenerating goldens)
set -euo pipefail

want_app=0
want_ref=0
for a in "$@"; do
  case "$a" in
    --app) want_app=1 ;;
    --reference) want_ref=1 ;;
    *) echo "install-deps.sh: unknown option '$a' (expected --app or --reference)" >&2; exit 2 ;;
  esac
done

pkgs=(build-essential cmake pkg-config git libfftw3-dev
      catch2 nlohmann-json3-dev libcli11-dev libopenblas-dev
      clang libclang-rt-14-dev)
if [ "$want_app" = 1 ]; then
  pkgs+=(libglfw3-dev libvulkan-dev glslc mesa-vulkan-drivers xvfb
         portaudio19-dev libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev
         libimgui-dev)
fi
if [ "$want_ref" = 1 ]; then
  pkgs+=(python3-torch python3-numpy)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all ${#pkgs[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
