#!/usr/bin/env python3
"""The pre-receive hook's time for a 1- and a 100-commit push, for two agentgate binaries
side by side, against `git rev-parse` in the same run (medians of 31 runs, interleaved).
Used to compare the binary a shim used to run (the full, unstripped build) with the packaged
hook build (`--no-default-features`, stripped).

    scripts/bench-push.py BEFORE AFTER     e.g. target/release/agentgate target/deb-assets/agentgate-hook

Both binaries must be able to sign (the first one signs the attestation the pushes carry).
The repositories come from scripts/bench.py (fast-import, one agent commit in 20)."""
import os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, after = (os.path.abspath(p) for p in sys.argv[1:])
    work = tempfile.mkdtemp(prefix="bench-push-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    bench.ENV = bench.env_for(home)
    bench.run([before, "keygen", "--out", os.path.join(work, "gate")])
    pol = bench.policy(os.path.join(work, "policy.toml"),
                       f'\n[[signer]]\nname = "gate"\npublic_key = "{work}/gate.pub"\n')
    for path in (before, after):
        print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB")
    for n in (1, 100):
        repo = os.path.join(work, f"push{n}.git")
        bench.fast_import(repo, 200)
        tip = bench.run(["git", "rev-parse", "main"], cwd=repo).stdout.decode().strip()
        old = bench.run(["git", "rev-parse", f"main~{n}"], cwd=repo).stdout.decode().strip()
        bench.run([before, "sign", "--key", os.path.join(work, "gate.key"), "--repo", repo,
                   "--commit", tip, "--artifact", pol, "--test-result", "passed", "--note"])
        henv = dict(bench.ENV, GIT_DIR=repo)
        stdin = f"{old} {tip} refs/heads/main\n".encode()
        runs = {"before": [], "after": [], "git rev-parse": []}
        for _ in range(31):
            for k, args in (("before", [before, "pre-receive", "--config", pol]),
                            ("after", [after, "pre-receive", "--config", pol]),
                            ("git rev-parse", ["git", "-C", repo, "rev-parse", tip])):
                t = time.perf_counter()
                p = subprocess.run(args, input=stdin, env=henv, capture_output=True)
                dt = time.perf_counter() - t
                if p.returncode != 0:
                    sys.exit(f"{k}: {p.stderr.decode()[:500]}")
                runs[k].append(dt)
        med = {k: statistics.median(v) * 1000 for k, v in runs.items()}
        print(f"{n}-commit push: " + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
              + f"; before/git {med['before'] / med['git rev-parse']:.2f}x,"
              + f" after/git {med['after'] / med['git rev-parse']:.2f}x")


if __name__ == "__main__":
    main()
