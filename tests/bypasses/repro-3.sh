#!/bin/bash
# Notice: copied unchanged (apart from this notice) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/namespaces.rs (class 4, namespaces).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-3.sh
# repro-3: namespaced repositories. Protected globs are matched against namespace-relative names,
# so a push made WITHOUT GIT_NAMESPACE to refs/namespaces/<ns>/refs/heads/main is "unprotected"
# and moves the protected main of namespace <ns>. Needs a server where the same repository is
# reachable both with and without a namespace (the wrapper below stands in for the server setting
# GIT_NAMESPACE, e.g. from the URL).
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null
printf 'version = 1\n[protect]\nrefs = ["refs/heads/main"]\n[[signer]]\nname = "gate"\npublic_key = "%s"\n' $W/gate.pub > $W/policy.toml
git init -q --bare -b main $W/srv.git; $AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
NS='env GIT_NAMESPACE=foo git-receive-pack'
git init -q -b main $W/c; cd $W/c; git remote add origin $W/srv.git
git commit -q --allow-empty -m base; git push -q --receive-pack="$NS" origin main
git commit -q --allow-empty -m "agent change" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; A=$(git rev-parse HEAD)
echo "== control: namespaced push to main"; git push --receive-pack="$NS" origin main 2>&1 | grep refused
echo "== push without namespace to refs/namespaces/foo/refs/heads/main"; git push origin $A:refs/namespaces/foo/refs/heads/main 2>&1 | tail -1
echo "== namespace foo's main, as its clients see it:"; git ls-remote --upload-pack='env GIT_NAMESPACE=foo git-upload-pack' $W/srv.git; echo "   (A=$A)"
