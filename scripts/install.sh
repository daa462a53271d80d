#!/usr/bin/env bash
# Build agentgate and install it without the Debian package (scripts/build-deb.sh makes one):
#   $PREFIX/bin/agentgate                 the full build (default PREFIX: /usr/local)
#   $PREFIX/lib/agentgate/agentgate-hook  the hook's build, no network code; the shims that
#                                         `agentgate install` writes run it
#   $CONFDIR/policy.toml                  the shipped policy, unless one is there already
#                                         (default CONFDIR: /etc/agentgate; with PREFIX set,
#                                         $PREFIX/etc/agentgate)
# Both binaries are stripped. Needs write access to PREFIX and CONFDIR only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PREFIX:-}" ]; then
  CONFDIR="${CONFDIR:-$PREFIX/etc/agentgate}"
else
  PREFIX=/usr/local
  CONFDIR="${CONFDIR:-/etc/agentgate}"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build --release --locked --no-default-features
strip -o "$tmp/agentgate-hook" target/release/agentgate
cargo build --release --locked
strip -o "$tmp/agentgate" target/release/agentgate
install -d "$PREFIX/bin" "$PREFIX/lib/agentgate" "$CONFDIR"
install -m 0755 "$tmp/agentgate" "$PREFIX/bin/agentgate"
install -m 0755 "$tmp/agentgate-hook" "$PREFIX/lib/agentgate/agentgate-hook"
if [ -e "$CONFDIR/policy.toml" ]; then
  install -m 0644 config/policy.toml "$CONFDIR/policy.toml.example"
  echo "kept $CONFDIR/policy.toml; the shipped one is $CONFDIR/policy.toml.example"
else
  install -m 0644 config/policy.toml "$CONFDIR/policy.toml"
fi
echo "installed $PREFIX/bin/agentgate and $PREFIX/lib/agentgate/agentgate-hook"
echo "next: README.md, \"Set up the server\" (the shipped policy trusts no gate yet)"
