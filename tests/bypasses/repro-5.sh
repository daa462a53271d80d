#!/bin/bash
# Notice: copied unchanged (apart from this notice) from the project's security review of
# issue 10. The before-stop check runs these scripts against a build; each prints what
# happened to its attack. The integration tests pinning this class and its variants are in
# tests/it/bypass/encodings.rs (class 5, encodings).
# Run: AG=target/release/agentgate bash tests/bypasses/repro-5.sh
# repro-5: detection differs from git for non-UTF-8/Latin-1 encodings. A commit with an
# `encoding UTF-7` header whose trailer is written in UTF-7 is shown by git log / %(trailers) as
# "Co-authored-by: Claude <noreply@anthropic.com>" (and its author as copilot-swe-agent[bot]),
# but agentgate decodes the bytes as UTF-8 and sees nothing: the push to main is accepted.
set -u
AG=${AG:-agentgate}
W=$(mktemp -d); mkdir -p $W/home
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
$AG keygen --out $W/gate >/dev/null
printf 'version = 1\n[protect]\nrefs = ["refs/heads/main"]\n[detect]\npresets = ["known-agents"]\n[[detect.rule]]\nid = "github-bots"\nauthor_email = %s\n[[signer]]\nname = "gate"\npublic_key = "%s"\n' "'\\[bot\\]@users\\.noreply\\.github\\.com\$'" $W/gate.pub > $W/policy.toml
git init -q --bare -b main $W/srv.git; $AG install --repo $W/srv.git --config $W/policy.toml >/dev/null
git init -q -b main $W/c; cd $W/c; git remote add origin $W/srv.git
git commit -q --allow-empty -m base; git push -q origin main
# UTF-7: '+' must not appear in the headers, so use a negative time zone
export GIT_AUTHOR_DATE="2026-01-05T10:00:00-0100" GIT_COMMITTER_DATE="2026-01-05T10:00:00-0100"
git -c i18n.commitEncoding=UTF-7 commit -q --allow-empty -m "Add feature" \
  -m "Generated with +AFs-Claude Code+AF0-(https://claude.com/claude-code)" -m "Co-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-"
GIT_AUTHOR_NAME='copilot-swe-agent+AFs-bot+AF0-' GIT_AUTHOR_EMAIL='198982749+-copilot-swe-agent+AFs-bot+AF0AQA-users.noreply.github.com' \
  git -c i18n.commitEncoding=UTF-7 commit -q --allow-empty -m "Bot change"
echo "== what git shows:"; git log -2 --format='   %h author=%an <%ae>  trailers=[%(trailers:unfold,only,separator=; )]'
echo "== agentgate inspect:"; $AG inspect --repo . HEAD~2..HEAD | sed 's/^/   /'
echo "== push main:"; git push origin main 2>&1 | tail -1
