#!/bin/bash
# Notice: copied from the project's security review of issue 11, apart from this notice and
# `--test-result passed` on `agentgate sign` (the outcome is now mandatory). The tests pinning
# this class are tests/it/promise_cases.rs and tests/it/promise_model.rs.
# Run: AG=target/release/agentgate bash tests/bypasses/repro-4.sh
# repro-4: under scope = "tip" (the default), an agent commit that entered main as a non-tip commit
# (main's attested tip is a later commit) can afterwards be made the TIP of a new protected ref
# (release tag / release branch) without any attestation of its own: for a created ref, commits
# already reachable from another protected ref do not count as entering, so nothing is required.
# The release tag then names code the gate never built or tested. Same with require="all-commits".
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null
printf 'version = 1\n[protect]\nrefs = ["refs/heads/main", "refs/heads/release/*", "refs/tags/v*"]\n[attest]\nscope = "tip"\n[[signer]]\nname = "gate"\npublic_key = "%s"\n' $W/gate.pub > $W/policy.toml
git init -q --bare -b main $W/srv.git; $AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
git init -q -b main $W/c; cd $W/c; git remote add origin $W/srv.git
git commit -q --allow-empty -m base; git push -q origin main
echo broken > app.c; git add app.c; git commit -q -m "agent: rewrite app.c" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; A=$(git rev-parse HEAD)
echo fixed > app.c; git commit -q -am "human: fix app.c"; M=$(git rev-parse HEAD)
echo artifact > $W/app.bin
$AG sign --key $W/gate.key --commit $M --artifact $W/app.bin --test-result passed --note >/dev/null 2>&1    # the gate built and tested M only
echo "== main -> M (tip attested, agent commit A inside):"; git push origin refs/notes/agentgate main 2>&1 | grep -E "main|refused"
echo "== control: v1 -> A would need an attestation if A were new:"; git checkout -q -b other HEAD~2; git commit -q --allow-empty -m "agent 2" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; git push origin HEAD:refs/tags/v0 2>&1 | grep refused
echo "== create tag v1 -> A (never attested):"; git push origin $A:refs/tags/v1 2>&1 | tail -1
echo "== create release/1.x -> A:"; git push origin $A:refs/heads/release/1.x 2>&1 | tail -1
git -C $W/srv.git show -s --format='   v1 = %h %s' v1; git -C $W/srv.git show v1:app.c | sed 's/^/   v1:app.c = /'
tail -1 $W/srv.git/agentgate/audit.jsonl | jq -c '{ref,decision,code,entering_commits}'
