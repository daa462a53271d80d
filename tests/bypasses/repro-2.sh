#!/bin/bash
# Notice: copied unchanged (apart from this notice) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/symrefs.rs (class 3, symbolic refs).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-2.sh
# repro-2: a push to an unprotected *symbolic* ref moves the protected ref it points to. The hook
# decides on the name git passes (the symref's name) and never resolves it. A server-side alias
# such as refs/heads/master -> refs/heads/main (the usual way to keep old clones working after a
# default-branch rename) is enough.
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
git init -q --bare -b main $W/srv.git; $AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
git init -q -b main $W/c; cd $W/c; git remote add origin $W/srv.git
git commit -q --allow-empty -m base; git push -q origin main
git -C $W/srv.git symbolic-ref refs/heads/master refs/heads/main      # admin: alias for the old name
git commit -q --allow-empty -m "agent change" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; A=$(git rev-parse HEAD)
echo "== control: push to main"; git push origin main 2>&1 | grep -E 'refused'
echo "== push the same commit to refs/heads/master"; git push origin $A:refs/heads/master 2>&1 | tail -1
echo "== server main: $(git -C $W/srv.git log -1 --format='%h %s' main)   (A=${A:0:7})"
tail -1 $W/srv.git/agentgate/audit.jsonl | jq -c '{ref,decision,code}'
echo "== deletion through the alias: git push origin :refs/heads/master"
git push origin :refs/heads/master 2>&1 | tail -1
echo "== server refs now:"; git -C $W/srv.git for-each-ref --format='   %(refname)'; echo "   (main is gone: $(git -C $W/srv.git rev-parse -q --verify refs/heads/main || echo yes))"
