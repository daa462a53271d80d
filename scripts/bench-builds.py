#!/usr/bin/env python3
"""`check` over a repository's whole `main` for several agentgate builds and
`git rev-list --format=%B`, alternating: median wall time, median CPU time (user + system,
from rusage) and peak RSS (GNU time). Used for issue 18 to bisect the 100,000-commit `check`
across builds (old ones built from their commits in a worktree).

    scripts/bench-builds.py REPO RUNS NAME=BINARY [NAME=BINARY ...]
"""
import os, resource, statistics, subprocess, sys, tempfile, time


def main():
    if len(sys.argv) < 4 or not all("=" in a for a in sys.argv[3:]):
        sys.exit(__doc__)
    repo, runs = sys.argv[1], int(sys.argv[2])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    tip = subprocess.run(["git", "-C", repo, "rev-parse", "main"], capture_output=True,
                         text=True, env=env, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        pol = os.path.join(tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write('version = 1\n[protect]\nrefs = ["refs/heads/main"]\n'
                    '[detect]\npresets = ["known-agents"]\n')
        cmds = {}
        for arg in sys.argv[3:]:
            name, binary = arg.split("=", 1)
            cmds[name] = [binary, "check", "--repo", repo, "--config", pol, "--json",
                          "0" * 40, tip, "refs/heads/main"]
        cmds["git"] = ["git", "-C", repo, "rev-list", "--format=%B", tip]
        wall = {k: [] for k in cmds}
        cpu = {k: [] for k in cmds}
        for _ in range(runs):
            for k, c in cmds.items():
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                p = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                wall[k].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[k].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                # check exits 1 when it would refuse (the repository has agent commits).
                if p.returncode not in (0, 1):
                    sys.exit(f"{k} failed ({p.returncode}): {p.stderr.decode()[:300]}")
        gw, gc = statistics.median(wall["git"]), statistics.median(cpu["git"])
        for k, c in cmds.items():
            w, u = statistics.median(wall[k]), statistics.median(cpu[k])
            p = subprocess.run(["/usr/bin/time", "-f", "%M"] + c, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env)
            rss = int(p.stderr.decode().split()[-1]) // 1024
            print(f"{k}: wall {w * 1000:.0f} ms ({w / gw:.2f}x git), "
                  f"cpu {u * 1000:.0f} ms ({u / gc:.2f}x git), peak RSS {rss} MiB")


if __name__ == "__main__":
    main()
