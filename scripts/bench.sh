#!/usr/bin/env bash
# Benchmarks against git and openssl in the same run; writes BENCHMARKS.md.
#   scripts/bench.sh           full run (100k-commit repositories, 1 GiB artifact)
#   scripts/bench.sh --quick   small sizes: checks that the script works
set -euo pipefail
cd "$(dirname "$0")/.."
# GNU time measures peak memory; install it when we can.
if [ ! -x /usr/bin/time ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 || true
fi
cargo build --release --locked
exec python3 scripts/bench.py "$@"
