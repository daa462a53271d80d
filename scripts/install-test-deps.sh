#!/usr/bin/env bash
# Install what the test suite needs beyond the Rust toolchain: Debian packages for real
# servers and sandboxing (bubblewrap and a C compiler for the gate tests), and the third-party
# verifiers used by the interop tests.
# Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(git openssl bubblewrap gcc make)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ -x scripts/install-interop-deps.sh ]; then
  scripts/install-interop-deps.sh
fi
