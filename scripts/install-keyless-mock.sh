#!/usr/bin/env bash
# Install the local Fulcio/Rekor/TSA stand-ins that tests/it/keyless_sign.rs signs against:
# @sigstore/mock, pinned by tests/interop/keyless-mock/package-lock.json, from the npm registry.
# Needs Node.js >= 20.17 and npm (@sigstore/mock 0.13 needs Node.js 22, hence 0.12.1).
# Idempotent; installs into tests/interop/keyless-mock/node_modules (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../tests/interop/keyless-mock"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-keyless-mock: node and npm are required (Node.js >= 20.17)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)'; then
  echo "install-keyless-mock: Node.js >= 20.17 is required, found $(node --version)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
node -e 'require("@sigstore/mock"); console.log("install-keyless-mock: @sigstore/mock " + require("@sigstore/mock/package.json").version)'
