#!/usr/bin/env bash
# Installs the Debian packages tapegrad builds and tests with (as root on a fresh Debian; skips what is present).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libeigen3-dev libfmt-dev doctest-dev nlohmann-json3-dev
      libopenblas-dev librapidcheck-dev libcli11-dev libfftw3-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
