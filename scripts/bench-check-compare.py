#!/usr/bin/env python3
"""`check` over 100,000 entering commits for two agentgate binaries and `git rev-list
--format=%B`, in alternating runs, so that the cost of a detection change is measured against
the build before it on the same machine at the same time (scripts/bench.py measures one build).

    cargo build --release --locked
    python3 scripts/bench-check-compare.py BASE_BINARY [NEW_BINARY] [--commits N] [--runs R]
    python3 scripts/bench-check-compare.py BASE_BINARY --repo PATH   # a real history (its HEAD)

NEW_BINARY defaults to target/release/agentgate. The repositories are scripts/bench.py's
(5% agent commits, decoys that mention agents), linear and with merges. Prints medians, the
ratio of each binary to git, and the agent commits each binary found (they must agree on these
histories, whose agent commits all carry a trailer both builds know).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def timed(args):
    """Wall and CPU (user + system, all threads) seconds of one run; CPU time moves far less
    than wall time when other work shares the machine."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, env=bench.ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new", nargs="?", default=bench.AG)
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--repo", help="an existing repository: time the whole history of its HEAD")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="agentgate-bench-cmp-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    bench.ENV = bench.env_for(home)
    try:
        pol = bench.policy(os.path.join(work, "policy.toml"))
        histories = [(args.repo, None)] if args.repo else [("linear", False), ("with merges", True)]
        for label, merges in histories:
            if args.repo:
                repo = os.path.abspath(args.repo)
            else:
                repo = os.path.join(work, f"big-{'m' if merges else 'l'}.git")
                bench.fast_import(repo, args.commits, merges=merges)
            tip = bench.run(["git", "rev-parse", "HEAD" if args.repo else "main"], cwd=repo).stdout.decode().strip()

            def check(binary):
                return [binary, "check", "--repo", repo, "--config", pol, "--json", bench.ZERO, tip, "refs/heads/main"]

            found = []
            for binary in (args.base, args.new):
                out = json.loads(bench.run(check(binary), check=False).stdout)
                found.append((out["entering_commits"], len(out["agent_commits"])))
            cmds = [check(args.base), check(args.new), ["git", "-C", repo, "rev-list", "--format=%B", tip]]
            walls, cpus = [[], [], []], [[], [], []]
            for _ in range(args.runs):
                for cmd, w, c in zip(cmds, walls, cpus):
                    dt, cpu = timed(cmd)
                    w.append(dt)
                    c.append(cpu)
            (base, new, git), (cbase, cnew, cgit) = ([statistics.median(t) for t in ts] for ts in (walls, cpus))
            print(f"{found[1][0]:,} commits, {label} (medians of {args.runs}: wall, CPU):")
            print(f"  git rev-list --format=%B  {bench.fmt_t(git):>10} {bench.fmt_t(cgit):>10}")
            print(f"  base check                {bench.fmt_t(base):>10} {bench.fmt_t(cbase):>10}  {base / git:.2f}x git wall, {cbase / cgit:.2f}x CPU  entering/agent {found[0]}")
            print(f"  new check                 {bench.fmt_t(new):>10} {bench.fmt_t(cnew):>10}  {new / git:.2f}x git wall, {cnew / cgit:.2f}x CPU  entering/agent {found[1]}")
            print(f"  new / base                {new / base:.3f} wall, {cnew / cbase:.3f} CPU")
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
