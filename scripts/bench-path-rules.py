#!/usr/bin/env python3
"""The cost of path rules: the hook's decision over a 10,000-commit push with and without
`[[path_rule]]`s, measured in alternating runs (medians), on the release build.

Worst case for path rules: every entering commit is an agent commit (so every one is diffed
against its parent), in a tree of 2,000 files three directories deep, each commit changing one
file; one gate attestation on the tip (scope "tip"). Run `cargo build --release` first.

    python3 scripts/bench-path-rules.py [--commits 10000] [--runs 7]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (env_for, run, timed, policy, AG, ZERO, CLAUDE)

RULES = """
[[path_rule]]
id = "ci-config"
paths = [".github/workflows/**", "/.gitlab-ci.yml", "**/CODEOWNERS"]
action = "refuse"

[[path_rule]]
id = "agent-instructions"
paths = ["AGENTS.md", "CLAUDE.md", "docs/security/**"]
action = "require-approval"
approvals = 1

[[approver]]
name = "alice"
public_key = "{work}/alice.pub"
email = "alice@example.com"
"""


def timed_cpu(args, stdin, env):
    """Wall time, CPU time (user + sys, the hook and the git it runs) and exit code of one run.
    CPU time is the figure to compare on a busy machine: wall time there is mostly waiting."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(stdin)
    p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def history(repo, n):
    """2,000 files in src/<a>/<b>/file<k>.rs, then n agent commits each changing one of them."""
    bench.run(["git", "init", "-q", "--bare", "-b", "main", repo])
    chunks = [b"commit refs/heads/main\nmark :1\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata 4\nbase\n"]
    files = [f"src/d{i % 20}/e{(i // 20) % 10}/file{i}.rs" for i in range(2000)]
    for f in files:
        chunks.append(f"M 644 inline {f}\ndata 2\nx\n".encode())
    for i in range(n):
        msg = f"feat: change {i}\n\n{bench.CLAUDE}\n".encode()
        chunks.append(f"commit refs/heads/main\nmark :{i + 2}\ncommitter Bench <bench@example.com> {1700000001 + i} +0000\ndata {len(msg)}\n".encode())
        chunks.append(msg)
        chunks.append(f"from :{i + 1}\n".encode())
        body = str(i).encode()
        chunks.append(f"M 644 inline {files[(i * 7) % len(files)]}\ndata {len(body)}\n".encode() + body + b"\n")
    bench.run(["git", "fast-import", "--quiet"], cwd=repo, stdin=b"".join(chunks))
    bench.run(["git", "gc", "-q"], cwd=repo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="agentgate-bench-paths-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    bench.ENV = bench.env_for(home)
    for k in ("gate", "alice"):
        bench.run([bench.AG, "keygen", "--out", os.path.join(work, k)])
    signer = f'\n[[signer]]\nname = "gate"\npublic_key = "{work}/gate.pub"\n'
    plain = bench.policy(os.path.join(work, "plain.toml"), signer)
    rules = bench.policy(os.path.join(work, "rules.toml"), signer + RULES.format(work=work))
    repo = os.path.join(work, "r.git")
    history(repo, a.commits)
    tip = bench.run(["git", "rev-parse", "main"], cwd=repo).stdout.decode().strip()
    base = bench.run(["git", "rev-list", "--max-parents=0", "main"], cwd=repo).stdout.decode().strip()
    bench.run([bench.AG, "sign", "--key", os.path.join(work, "gate.key"), "--repo", repo, "--commit", tip,
               "--artifact", plain, "--test-result", "passed", "--note"])
    # Each decision as the hook makes it (stdin, audit log with fsync), `base` already on main.
    bench.run(["git", "update-ref", "refs/heads/main", base], cwd=repo)
    henv = dict(bench.ENV, GIT_DIR=repo)
    stdin = f"{base} {tip} refs/heads/main\n".encode()
    cmds = {name: dict(args=[bench.AG, "pre-receive", "--config", pol], stdin=stdin, env=henv)
            for name, pol in (("without", plain), ("with", rules))}
    for name, cmd in cmds.items():
        _, _, code = timed_cpu(**cmd)
        if code != 0:
            sys.exit(f"bench: the push {name} path rules was refused (exit {code})")
    times = {name: [] for name in cmds}
    cpus = {name: [] for name in cmds}
    for _ in range(a.runs):
        for name, cmd in cmds.items():
            wall, cpu, _ = timed_cpu(**cmd)
            times[name].append(wall)
            cpus[name].append(cpu)
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    cw, cwo = statistics.median(cpus["with"]), statistics.median(cpus["without"])
    print(f"pre-receive decision over {a.commits:,} entering agent commits, attested tip, {a.runs} runs (medians; wall, and CPU user+sys):")
    print(f"  without path rules: {wo * 1000:.1f} ms wall, {cwo * 1000:.1f} ms CPU")
    print(f"  with path rules:    {w * 1000:.1f} ms wall, {cw * 1000:.1f} ms CPU"
          f"  ({(cw - cwo) * 1000:.1f} ms CPU more, {(cw - cwo) * 1e6 / a.commits:.1f} us CPU per commit)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
