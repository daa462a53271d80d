#!/usr/bin/env bash
# The server hook's build (`cargo build --no-default-features`) links nothing that only CI's side
# needs: not the gate (feature `gate`, which alone brings shlex), not keyless signing
# (feature `keyless-sign`: agentgate-keyless with its async runtime and HTTP and TLS clients) and
# not the TUF client of `trust-root update` (feature `trust-root-update`: sigstore-tuf).
# Checked on the dependency graph, so a new dependency that drags them in fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."

crates() {
  cargo tree --locked -p agentgate -e normal --prefix none --format '{p}' "$@" |
    sed 's/ .*//' | sort -u
}

only_ci='^(agentgate-keyless|sigstore-sign|sigstore-tuf|sigstore-fulcio|sigstore-oidc|tokio|tokio-rustls|reqwest|hyper|hyper-util|hyper-rustls|h2|rustls|shlex)$'

hook=$(crates --no-default-features)
if found=$(grep -E "$only_ci" <<<"$hook"); then
  echo "check-hook-deps: the hook's build (--no-default-features) links what only CI needs:" >&2
  echo "$found" >&2
  exit 1
fi
# The check would pass on an empty graph: the default build must have what the hook's lacks.
full=$(crates)
for c in agentgate-keyless sigstore-tuf tokio reqwest shlex; do
  grep -qx "$c" <<<"$full" || { echo "check-hook-deps: $c missing from the default build" >&2; exit 1; }
done
echo "check-hook-deps: the hook's build links no gate, no keyless signing, no TUF client ($(wc -l <<<"$hook") crates)"
