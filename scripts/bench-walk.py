#!/usr/bin/env python3
"""`check` over a repository's whole `main` for two agentgate binaries and `git rev-list
--format=%B`, alternating, medians and peak RSS (GNU time). Used for issue 18 to compare a
build with the one before it on the 100,000-commit repositories scripts/bench.py makes.

    scripts/bench-walk.py REPO POLICY RUNS BEFORE AFTER
"""
import os, statistics, subprocess, sys, time


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    repo, pol, runs, before, after = sys.argv[1:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    tip = subprocess.run(["git", "-C", repo, "rev-parse", "main"], capture_output=True, text=True, env=env).stdout.strip()
    ag = lambda b: [b, "check", "--repo", repo, "--config", pol, "--json", "0" * 40, tip, "refs/heads/main"]
    cmds = {"before": ag(before), "after": ag(after), "git": ["git", "-C", repo, "rev-list", "--format=%B", tip]}
    res = {k: [] for k in cmds}
    for _ in range(int(runs)):
        for k, c in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            res[k].append(time.perf_counter() - t0)
    g = statistics.median(res["git"])
    for k, v in res.items():
        p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmds[k]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        rss = int(p.stderr.decode().split()[-1]) // 1024
        print(f"{k}: {statistics.median(v) * 1000:.0f} ms ({statistics.median(v) / g:.2f}x git), peak RSS {rss} MiB")


if __name__ == "__main__":
    main()
