#!/bin/sh
# Install the third-party verifiers that tests/it/interop.rs runs (AGENTGATE_INTEROP=1):
# sigstore-js packages into tests/interop/node_modules (exact versions from package-lock.json)
# and securesystemslib into the virtualenv tests/interop/.venv, with python-tuf (the TUF
# reference implementation: tests/it/trust_root.rs builds its TUF repositories with it).
# Needs node >= 20 with npm, and python3 >= 3.8 with venv.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/interop"

command -v node >/dev/null || { echo "install-interop-deps: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "install-interop-deps: npm is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "install-interop-deps: python3 is not installed" >&2; exit 1; }

(cd "$dir" && npm ci --no-audit --no-fund)

python3 -m venv "$dir/.venv"
"$dir/.venv/bin/pip" install --quiet --disable-pip-version-check \
    securesystemslib==1.6.0 cryptography==46.0.3 tuf==7.0.1

node -e "require('$dir/node_modules/@sigstore/verify')" 
"$dir/.venv/bin/python" -c "import securesystemslib.dsse, cryptography, tuf.api.metadata"
echo "install-interop-deps: ready (node $(node --version), $("$dir/.venv/bin/python" --version))"
