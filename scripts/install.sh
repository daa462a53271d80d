#!/usr/bin/env bash
# Build agentgate and install it as /usr/local/bin/agentgate (or $PREFIX/bin/agentgate),
# with the example policy in /etc/agentgate/policy.toml.example.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${PREFIX:-/usr/local}"
cargo build --release --locked
install -d "$PREFIX/bin"
install -m 0755 target/release/agentgate "$PREFIX/bin/agentgate"
install -d /etc/agentgate
install -m 0644 config/policy.toml /etc/agentgate/policy.toml.example
echo "installed $PREFIX/bin/agentgate; example policy in /etc/agentgate/policy.toml.example"
echo "next: write /etc/agentgate/policy.toml, then: agentgate install --repo /srv/git/<repo>.git"
