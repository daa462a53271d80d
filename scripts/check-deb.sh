#!/usr/bin/env bash
# Install the Debian package on this machine (dpkg -i), use it as an admin would, and remove
# it again (dpkg --purge): the binary runs, the man pages are found, the shipped policy loads
# and its example cases pass, the demo runs from the installed binary (its hook runs the
# packaged hook build), the hook build links no network code, and nothing is left behind.
# Needs root. Usage: scripts/check-deb.sh [PACKAGE.deb] (default: the one in target/debian/).
set -euo pipefail
cd "$(dirname "$0")/.."
deb="${1:-$(ls -t target/debian/agentgate_*.deb | head -n1)}"
fail() { echo "check-deb: $*" >&2; exit 1; }

# The tests write /etc/agentgate/policy.toml too (tests/it/system_policy.rs): same lock.
exec 9>"${TMPDIR:-/tmp}/agentgate-system-policy-test.lock"
flock 9

if dpkg -s agentgate >/dev/null 2>&1; then
  fail "agentgate is already installed here; this check installs and removes its own copy"
fi
[ ! -e /etc/agentgate/policy.toml ] || fail "/etc/agentgate/policy.toml exists: it would be taken as the package's"
trap 'dpkg --purge agentgate >/dev/null 2>&1 || true' EXIT

dpkg -i "$deb"
agentgate --version
/usr/lib/agentgate/agentgate-hook --version
man -w agentgate
man -w agentgate-install agentgate-policy-check >/dev/null
dpkg-query -W -f='${Conffiles}\n' agentgate | grep -q '/etc/agentgate/policy.toml' \
  || fail "/etc/agentgate/policy.toml is not a conffile"
for f in /usr/share/bash-completion/completions/agentgate \
         /usr/share/zsh/vendor-completions/_agentgate \
         /usr/share/fish/vendor_completions.d/agentgate.fish \
         /usr/share/doc/agentgate/README.md /usr/share/doc/agentgate/copyright; do
  [ -s "$f" ] || fail "$f is missing"
done
bash -c 'source /usr/share/bash-completion/completions/agentgate && complete -p agentgate' >/dev/null \
  || fail "the bash completion does not load"

# Stripped, and the hook's build links no HTTP client, TLS stack or async runtime (their
# panic locations would name the crates even in a stripped binary).
for b in /usr/bin/agentgate /usr/lib/agentgate/agentgate-hook; do
  file "$b" | grep -q 'stripped' && ! file "$b" | grep -q 'not stripped' || fail "$b is not stripped"
done
if grep -aqE 'tokio-[0-9]|reqwest-[0-9]|hyper-[0-9]|rustls-[0-9]' /usr/lib/agentgate/agentgate-hook; then
  fail "the hook's build links network code"
fi
grep -aqE 'tokio-[0-9]' /usr/bin/agentgate || fail "the full build has no tokio: the check above proves nothing"

# The shipped policy loads as shipped, and the example cases pass against it.
agentgate policy check /etc/agentgate/policy.toml
agentgate policy test /etc/agentgate/policy.toml /usr/share/doc/agentgate/policy-tests

# The demo from the installed binary; its hook runs the packaged hook build.
demo=$(mktemp -d)
agentgate demo --keep --dir "$demo/d" > "$demo/out.txt" 2>&1 || { cat "$demo/out.txt"; fail "the demo failed"; }
grep -rqs "exec '/usr/lib/agentgate/agentgate-hook' pre-receive" "$demo/d" \
  || fail "the demo's hook does not run /usr/lib/agentgate/agentgate-hook"
rm -rf "$demo"

ls -l /usr/bin/agentgate /usr/lib/agentgate/agentgate-hook
dpkg --purge agentgate
trap - EXIT
for f in /usr/bin/agentgate /usr/lib/agentgate /etc/agentgate/policy.toml /usr/share/man/man1/agentgate.1.gz; do
  [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
echo "check-deb: installed, used and purged $(basename "$deb")"
