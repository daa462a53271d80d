#!/usr/bin/env bash
# Benchmarks against git and openssl in the same run; writes BENCHMARKS.md.
#   scripts/bench.sh           full run (100k-commit repositories, 1 GiB artifact)
#   scripts/bench.sh --quick   small sizes: checks that the script works
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
exec python3 scripts/bench.py "$@"
