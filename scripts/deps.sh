#!/usr/bin/env bash
# Installs the system packages jiefen needs, idempotently.
#   scripts/deps.sh run    what building and running needs (FFmpeg -dev libraries, clang, pkg-config)
#   scripts/deps.sh test   plus PostgreSQL, redis-server, Chromium, Node.js/npm, a CJK font
# On a machine without apt-get it names what to install and fails.
set -euo pipefail
set_name=${1:-run}
RUN_PKGS=(pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
  libavdevice-dev libswscale-dev libswresample-dev fonts-wqy-microhei)
TEST_PKGS=(postgresql redis-server chromium python3 python3-venv curl ffmpeg poppler-utils)
pkgs=("${RUN_PKGS[@]}")
[ "$set_name" = test ] && pkgs+=("${TEST_PKGS[@]}")
command -v node >/dev/null 2>&1 || { [ "$set_name" = test ] && pkgs+=(nodejs npm); }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "jiefen: no dpkg here; install the equivalents of: ${pkgs[*]}" >&2
  exit 2
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "jiefen: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "jiefen: cargo not found; install Rust (https://rustup.rs) first" >&2
  exit 2
fi
