#!/usr/bin/env bash
# Build the Debian package target/debian/agentgate_<version>-1_<arch>.deb (cargo-deb; the
# layout is [package.metadata.deb] in Cargo.toml):
#   /usr/bin/agentgate                  the full build: gate, signing (keyless too), verify
#   /usr/lib/agentgate/agentgate-hook   the hook's build (--no-default-features): no gate, no
#                                       HTTP, TLS or async runtime; the shims run it
#   man pages (one per command) and bash/zsh/fish completions, from the clap definitions
#   /etc/agentgate/policy.toml          config/policy.toml, a conffile that loads as shipped
# Both binaries are stripped. Needs cargo-deb (scripts/install-test-deps.sh puts it in
# target/ci-tools/bin), strip (binutils) and gzip.
# AGENTGATE_DEB_PROFILE=dev packs the dev profile's binaries instead of release ones: .ci/run
# checks the packaging with the binaries its tests already compiled rather than two release
# builds of the whole dependency tree (a package to ship is always built with the default).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PWD/target/ci-tools/bin:$PATH"
profile="${AGENTGATE_DEB_PROFILE:-release}"
case "$profile" in
  release) out=target/release ;;
  dev) out=target/debug ;;
  *) echo "build-deb: AGENTGATE_DEB_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"

# The hook's build first, then the full one: both land in $out/agentgate.
cargo build --profile "$profile" --locked --no-default-features
strip -o "$assets/agentgate-hook" "$out/agentgate"
cargo build --profile "$profile" --locked
strip -o "$assets/agentgate" "$out/agentgate"

# Man pages and completions from the command definitions (never written by hand).
cargo run -q --locked -p xtask -- man "$assets/man"
gzip -9n "$assets"/man/*.1
cargo run -q --locked -p xtask -- completions "$assets/completions"

# Already built and stripped: cargo-deb only packs.
cargo-deb --no-build --no-strip -p agentgate -o target/debian/
ls -l target/debian/*.deb
