#!/usr/bin/env python3
"""agentgate benchmarks, each against its reference measured in the same run.

Makes its own repositories with `git fast-import`, times agentgate and the reference in
alternating runs (so machine noise hits both alike), and writes medians and ratios to
BENCHMARKS.md with the machine and date. Run through scripts/bench.sh.

    scripts/bench.sh              # full run (about 10 minutes on 2 cores)
    scripts/bench.sh --quick      # smaller sizes, fewer runs (a smoke test of the script)
"""

import base64
import concurrent.futures
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AG = os.path.join(ROOT, "target", "release", "agentgate")
ZERO = "0" * 40

CLAUDE = "Co-Authored-By: Claude <noreply@anthropic.com>"


def env_for(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "AGENTGATE_CONFIG"}
    env.update(
        HOME=home,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
        LC_ALL="C",
    )
    return env


ENV = None


def run(args, cwd=None, stdin=None, env=None, check=True):
    p = subprocess.run(args, cwd=cwd, input=stdin, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        sys.exit(f"bench: {' '.join(args)} failed ({p.returncode}): {p.stderr.decode(errors='replace')[:2000]}")
    return p


def peak_rss_kib(args):
    """Peak RSS of one run, measured by GNU time (wait4's figure would include the forked
    Python interpreter's pages, recorded before exec)."""
    if not shutil.which("time") or not os.path.exists("/usr/bin/time"):
        return None
    p = run(["/usr/bin/time", "-f", "%M", *args], check=False)
    return int(p.stderr.decode().strip().splitlines()[-1])


def timed(args, cwd=None, stdin=None, env=None):
    """Wall time (s) and exit code of one run; output discarded."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, env=env or ENV, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin is not None:
        p.stdin.write(stdin)
        p.stdin.close()
    _, status, rusage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return dt, rusage.ru_maxrss, p.returncode


def compare(a, b, runs, setup=None):
    """Alternate a and b `runs` times; medians of wall time and peak RSS."""
    ta, tb, ma, mb = [], [], [], []
    for _ in range(runs):
        for cmd, ts, ms in ((a, ta, ma), (b, tb, mb)):
            if setup:
                setup()
            dt, _ = timed(**cmd)[::2]
            ts.append(dt)
            ms.append(0)
    return statistics.median(ta), statistics.median(tb), statistics.median(ma), statistics.median(mb)


def fast_import(repo, n, agent_every=20, merges=False):
    """A history of n commits on main: every `agent_every`-th (none if 0) carries a Claude trailer block,
    others have body-text decoys that mention agents outside the trailer block."""
    run(["git", "init", "-q", "--bare", "-b", "main", repo])
    chunks = []
    side = 0
    for i in range(n):
        if agent_every and i % agent_every == 0:
            msg = f"feat: change {i}\n\nAgent-written change.\n\n{CLAUDE}\n"
        elif i % 7 == 0:
            msg = f"docs: note {i}\n\nWe tried Claude and aider on this; see Co-authored-by: in the docs.\nGenerated with care by a human.\n"
        else:
            msg = f"fix: change {i}\n\nBody text line one.\nBody text line two.\n"
        b = msg.encode()
        chunks.append(f"commit refs/heads/main\nmark :{i + 1}\ncommitter Bench <bench@example.com> {1700000000 + i} +0000\ndata {len(b)}\n".encode())
        chunks.append(b)
        if i > 0:
            chunks.append(f"from :{i}\n".encode())
        if merges and i > 10 and i % 10 == 0:
            side += 1
            chunks.append(f"merge :{i - 5}\n".encode())
        chunks.append(f"M 644 inline f{i % 50}\ndata {len(str(i))}\n{i}\n".encode())
    run(["git", "fast-import", "--quiet"], cwd=repo, stdin=b"".join(chunks))
    run(["git", "gc", "-q"], cwd=repo)


def policy(path, extra=""):
    with open(path, "w") as f:
        f.write('version = 1\n[protect]\nrefs = ["refs/heads/main"]\n[detect]\npresets = ["known-agents"]\n' + extra)
    return path


def fmt_t(s):
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.2f} s"


def c_project(path, files=60):
    """A small C project in a work tree: `files` translation units, a Makefile, a test."""
    run(["git", "init", "-q", "-b", "main", path])
    for i in range(files):
        with open(os.path.join(path, f"f{i}.c"), "w") as f:
            f.write(f"int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i + 1}; return s; }}\n")
    decls = "".join(f"int f{i}(int);\n" for i in range(files))
    calls = " + ".join(f"f{i}(10)" for i in range(files))
    with open(os.path.join(path, "main.c"), "w") as f:
        f.write(f"#include <stdio.h>\n{decls}int main(void) {{ printf(\"%d\\n\", {calls}); return 0; }}\n")
    objs = " ".join(f"f{i}.o" for i in range(files))
    with open(os.path.join(path, "Makefile"), "w") as f:
        f.write(f"prog: main.o {objs}\n\tcc -o prog main.o {objs}\n%.o: %.c\n\tcc -O2 -c $<\n")
    run(["git", "add", "-A"], cwd=path)
    run(["git", "commit", "-q", "-m", "c project"], cwd=path)


def gate_rows(work, rows, notes, runs):
    if not shutil.which("cc") or not shutil.which("make"):
        raise RuntimeError("no C compiler or make")
    proj = os.path.join(work, "cproj")
    c_project(proj)
    key = os.path.join(work, "gate.key")
    counter = [0]

    def by_hand():
        counter[0] += 1
        d = os.path.join(work, f"hand{counter[0]}")
        run(["git", "clone", "-q", proj, d])
        run(["make", "-s", "-C", d])
        run([os.path.join(d, "prog")])
        shutil.rmtree(d)

    def step_seconds(out):
        """The build and test steps' own durations, as the gate recorded them in the
        provenance it signed (the rest of its time is the gate's own)."""
        try:
            with open(os.path.join(out, "provenance.sigstore.json")) as f:
                env = json.load(f)["dsseEnvelope"]
            stmt = json.loads(base64.b64decode(env["payload"]))
        except (OSError, KeyError, ValueError):
            return None
        total, stack = 0, [stmt]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if "durationMs" in x and "step" in x:
                    total += x["durationMs"]
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
        return total / 1000

    def gate(extra):
        counter[0] += 1
        out = os.path.join(work, f"gateout{counter[0]}")
        run([AG, "gate", "--key", key, "--repo", proj, "--commit", "HEAD", "--build", "make -s", "--test", "./prog",
             "--artifact", "prog", "--out", out, *extra])
        steps = step_seconds(out)
        shutil.rmtree(out, ignore_errors=True)
        return steps

    modes = [("--danger-no-sandbox", ["--danger-no-sandbox"], "at most 1.02x")]
    if shutil.which("bwrap"):
        modes.append(("--sandbox bwrap", ["--sandbox", "bwrap"], "at most 1.02x"))
    modes.append(("--reproducible --danger-no-sandbox", ["--reproducible", "--danger-no-sandbox"], "at most 2.05x"))
    gate(modes[0][1])  # warm caches, and fail early if the gate cannot run here
    for label, extra, goal in modes:
        ta, tb, own = [], [], []
        for _ in range(runs):
            t0 = time.perf_counter(); steps = gate(extra); ta.append(time.perf_counter() - t0)
            if steps is not None:
                own.append(ta[-1] - steps)
            t0 = time.perf_counter(); by_hand(); tb.append(time.perf_counter() - t0)
        note = ""
        if own:
            note = (f"gate's own time (wall minus its recorded build and test steps) "
                    f"{statistics.median(own) * 1000:.0f} ms")
        rows.append((f"`gate {label}` on a 61-file C project", "`git clone`, `make`, test by hand", statistics.median(ta), statistics.median(tb), goal, note))


def main():
    global ENV
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = ap.parse_args()
    q = args.quick
    load_before = os.getloadavg()[0]
    big, small = (20_000, 2_000) if q else (100_000, 10_000)
    runs_big, runs_small = (3, 5) if q else (7, 21)
    gib = (64 << 20) if q else (1 << 30)

    work = tempfile.mkdtemp(prefix="agentgate-bench-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    ENV = env_for(home)
    rows = []
    notes = []
    try:
        # -- keys and policy
        run([AG, "keygen", "--out", os.path.join(work, "gate")])
        pol = policy(os.path.join(work, "policy.toml"), f'\n[[signer]]\nname = "gate"\npublic_key = "{work}/gate.pub"\n')

        # -- 1. check over many entering commits vs git rev-list --format=%B
        for label, merges in (("linear", False), ("with merges", True)):
            repo = os.path.join(work, f"big-{'m' if merges else 'l'}.git")
            fast_import(repo, big, merges=merges)
            tip = run(["git", "rev-parse", "main"], cwd=repo).stdout.decode().strip()
            a = dict(args=[AG, "check", "--repo", repo, "--config", pol, "--json", ZERO, tip, "refs/heads/main"])
            b = dict(args=["git", "-C", repo, "rev-list", "--format=%B", tip])
            ta, tb, _, _ = compare(a, b, runs_big)
            ma, mb = peak_rss_kib(a["args"]), peak_rss_kib(b["args"])
            mem = f"peak RSS {ma // 1024} MiB vs {mb // 1024} MiB" if ma and mb else ""
            rows.append((f"`check` over {big:,} entering commits ({label}, 5% agent)", "`git rev-list --format=%B` same range", ta, tb, "at most 0.8x", mem))
            # The same range without git's commit-graph (`git gc` writes one; a push's new
            # commits are never in it): both sides walk from objects alone.
            graph = os.path.join(repo, "objects", "info", "commit-graph")
            if not merges and os.path.exists(graph):
                os.rename(graph, graph + ".off")
                try:
                    ta, tb, _, _ = compare(a, b, runs_big)
                finally:
                    os.rename(graph + ".off", graph)
                rows.append((f"`check` over {big:,} entering commits ({label}, no commit-graph)", "`git rev-list --format=%B` same range, no commit-graph", ta, tb, "report", ""))

        # -- 2. memory as the range grows
        repo_s = os.path.join(work, "small.git")
        fast_import(repo_s, small)
        tip_s = run(["git", "rev-parse", "main"], cwd=repo_s).stdout.decode().strip()
        repo_l = os.path.join(work, "big-l.git")
        tip_l = run(["git", "rev-parse", "main"], cwd=repo_l).stdout.decode().strip()
        mems = []
        for repo, tip in ((repo_s, tip_s), (repo_l, tip_l)):
            mems.append((peak_rss_kib([AG, "check", "--repo", repo, "--config", pol, "--json", ZERO, tip, "refs/heads/main"]),
                         peak_rss_kib(["git", "-C", repo, "rev-list", "--format=%B", tip])))
        if all(m for pair in mems for m in pair):
            notes.append(f"Peak RSS of `check`: {mems[0][0] // 1024} MiB for {small:,} entering commits, {mems[1][0] // 1024} MiB for {big:,} "
                         f"(`git rev-list --format=%B`: {mems[0][1] // 1024} MiB and {mems[1][1] // 1024} MiB).")
        else:
            notes.append("Peak RSS not measured: GNU time (/usr/bin/time) is not installed.")

        # -- 3. typical push decisions vs git rev-parse (the hook itself: stdin, audit log with fsync)
        for n in (1, 100):
            repo = os.path.join(work, f"push{n}.git")
            fast_import(repo, 200)
            tip = run(["git", "rev-parse", "main"], cwd=repo).stdout.decode().strip()
            old = run(["git", "rev-parse", f"main~{n}"], cwd=repo).stdout.decode().strip()
            run([AG, "sign", "--key", os.path.join(work, "gate.key"), "--repo", repo, "--commit", tip, "--artifact", pol, "--test-result", "passed", "--note"])
            henv = dict(ENV, GIT_DIR=repo)
            stdin = f"{old} {tip} refs/heads/main\n".encode()
            a = dict(args=[AG, "pre-receive", "--config", pol], stdin=stdin, env=henv)
            b = dict(args=["git", "-C", repo, "rev-parse", tip])
            dt, _, code = timed(**a)
            if code != 0:
                sys.exit(f"bench: the {n}-commit push was refused (exit {code})")
            ta, tb, _, _ = compare(a, b, runs_small)
            rows.append((f"pre-receive decision, {n}-commit push, attested tip (1 signature check)", "`git rev-parse`", ta, tb, "under 5 ms and at most 2x", ""))

        # -- 4. hashing 1 GiB: sign and verify vs openssl dgst -sha256
        blob = os.path.join(work, "artifact.bin")
        with open(blob, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(gib >> 20):
                f.write(chunk)
        repo = os.path.join(work, "push1.git")
        tip = run(["git", "rev-parse", "main"], cwd=repo).stdout.decode().strip()
        out = os.path.join(work, "att")
        run([AG, "sign", "--key", os.path.join(work, "gate.key"), "--repo", repo, "--commit", tip, "--artifact", blob, "--test-result", "passed", "--out", out])
        ref = dict(args=["openssl", "dgst", "-sha256", blob])
        run(["cat", blob])  # warm the page cache
        a = dict(args=[AG, "verify", "--bundle", os.path.join(out, "provenance.sigstore.json"), "--key", os.path.join(work, "gate.pub"), blob])
        ta, tb, _, _ = compare(a, ref, runs_big)
        rows.append((f"`verify` of a {gib >> 20} MiB artifact", "`openssl dgst -sha256`", ta, tb, "within 5%", ""))
        a = dict(args=[AG, "sign", "--key", os.path.join(work, "gate.key"), "--repo", repo, "--commit", tip, "--artifact", blob, "--test-result", "passed", "--out", os.path.join(work, "att2")])
        ta, tb, _, _ = compare(a, ref, runs_big)
        rows.append((f"`sign` of a {gib >> 20} MiB artifact", "`openssl dgst -sha256`", ta, tb, "within 5%", ""))

        # -- 5. scope = "each": many attested agent commits
        n_each = 100 if q else 1000
        repo = os.path.join(work, "each.git")
        fast_import(repo, n_each, agent_every=1)
        ids = run(["git", "rev-list", "main"], cwd=repo).stdout.decode().split()
        key = os.path.join(work, "gate.key")
        for c in ids:
            run([AG, "sign", "--key", key, "--repo", repo, "--commit", c, "--artifact", pol, "--test-result", "passed", "--note"])
        pol_each = policy(os.path.join(work, "each.toml"), f'\n[attest]\nscope = "each"\n[[signer]]\nname = "gate"\npublic_key = "{work}/gate.pub"\n')
        a = dict(args=[AG, "check", "--repo", repo, "--config", pol_each, ZERO, ids[0], "refs/heads/main"])
        dt, _, code = timed(**a)
        if code != 0:
            sys.exit("bench: scope=each check refused")
        ts = [timed(**a)[0] for _ in range(runs_big)]
        t = statistics.median(ts)
        notes.append(f"`scope = \"each\"` with {n_each:,} attested agent commits ({2 * n_each:,} bundles verified): {fmt_t(t)} for the whole decision, {2 * n_each / t:,.0f} bundle verifications per second.")

        # -- 5b. scope = "each" with 10,000 attested commits, each with its own provenance
        # bundle in `attestations_dir` (10,000 files, indexed once per decision).
        n_dir = 1000 if q else 10_000
        repo = os.path.join(work, "each-dir.git")
        fast_import(repo, n_dir, agent_every=1)
        ids = run(["git", "rev-list", "main"], cwd=repo).stdout.decode().split()
        att = os.path.join(work, "att-dir")
        os.makedirs(att)

        def sign_into_dir(ic):
            i, c = ic
            out = os.path.join(work, f"sign-{i}")
            run([AG, "sign", "--key", key, "--repo", repo, "--commit", c, "--artifact", pol, "--test-result", "passed", "--out", out])
            os.rename(os.path.join(out, "provenance.sigstore.json"), os.path.join(att, f"{i:05}.json"))
            shutil.rmtree(out)

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(sign_into_dir, enumerate(ids)))
        sign_t = time.perf_counter() - t0
        pol_dir = policy(os.path.join(work, "each-dir.toml"),
                         f'\n[hook]\ntimeout = "10m"\n[attest]\nscope = "each"\nrequire_predicates = ["https://slsa.dev/provenance/v1"]\n'
                         f'attestations_dir = "{att}"\n[[signer]]\nname = "gate"\npublic_key = "{work}/gate.pub"\n')
        a = dict(args=[AG, "check", "--repo", repo, "--config", pol_dir, ZERO, ids[0], "refs/heads/main"])
        if timed(**a)[2] != 0:
            sys.exit("bench: scope=each with attestations_dir refused")
        ts = [timed(**a)[0] for _ in range(runs_big)]
        t = statistics.median(ts)
        notes.append(f"`scope = \"each\"` with {n_dir:,} attested agent commits, each with its own provenance bundle among {n_dir:,} files of `attestations_dir`: "
                     f"{fmt_t(t)} for the whole decision ({n_dir / t:,.0f} commits verified per second; goal: at most 2 s, see below). "
                     f"Signing them took {sign_t:.0f} s, one `agentgate sign` each, {os.cpu_count()} at a time.")

        # -- 6. a real push of 5,000 commits with and without the hook
        n_push = 1000 if q else 5000
        src = os.path.join(work, "src.git")
        fast_import(src, n_push, agent_every=0)
        src_tip = run(["git", "rev-parse", "main"], cwd=src).stdout.decode().strip()
        counter = [0]

        def fresh(hook):
            counter[0] += 1
            dst = os.path.join(work, f"dst{counter[0]}.git")
            run(["git", "init", "-q", "--bare", "-b", "main", dst])
            if hook:
                shutil.copy(pol, os.path.join(dst, "agentgate.toml"))
                run([AG, "install", "--repo", dst])
            return dst

        with_hook, without = [], []
        for _ in range(3 if q else 5):
            for hook, acc in ((True, with_hook), (False, without)):
                dst = fresh(hook)
                dt, _, code = timed(["git", "-C", src, "push", "-q", f"file://{dst}", "main"])
                if code != 0:
                    sys.exit("bench: push failed")
                acc.append(dt)
        tw, to = statistics.median(with_hook), statistics.median(without)
        rows.append((f"`git push` of {n_push:,} commits with the hook", "the same push without a hook", tw, to, "report the hook's share", f"hook share {(tw - to) / tw * 100:.0f}%"))

        # -- 7. the gate's own cost: gate vs the same clone, build and test by hand
        try:
            gate_rows(work, rows, notes, 3 if q else 7)
        except Exception as e:  # a gate that cannot run here is reported, not fatal
            notes.append(f"Gate benchmark not run: {e}")

        # -- 8. `audit verify` over 100,000 records (10,000 checkpoints): the log is written
        # through the library (100,000 pushes would take hours), by the ignored measurement in
        # tests/it/audit_trail.rs, built in release; its figures are reported here.
        if not q:
            p = subprocess.run(["cargo", "test", "--release", "--locked", "-q", "--test", "it",
                                "audit_trail::measure_audit_verify_100k", "--", "--ignored", "--nocapture"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            found = [l for l in p.stderr.decode().splitlines() if l.startswith("100,000 records")]
            if p.returncode == 0 and found:
                notes.append(f"`audit verify` (`cargo test --release --test it audit_trail::measure_audit_verify_100k -- --ignored --nocapture`): {found[0]}; goal: at most 5 s without --key, see below.")
            else:
                notes.append(f"`audit verify` over 100,000 records not measured: {p.stderr.decode()[-300:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    git_v = run(["git", "--version"]).stdout.decode().strip()
    ossl = run(["openssl", "version"]).stdout.decode().strip()
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `scripts/bench.sh{' --quick' if q else ''}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; {git_v}; {ossl}; "
        f"1-minute load average {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end.",
        "Each row alternates agentgate and its reference in the same run and reports medians "
        f"({runs_small} runs for the small cases, {runs_big} for the large ones). These machines are noisy: compare ratios, not times.",
        "",
        "| benchmark | reference | agentgate | reference | ratio | goal | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, ref, ta, tb, goal, note in rows:
        lines.append(f"| {what} | {ref} | {fmt_t(ta)} | {fmt_t(tb)} | {ta / tb:.2f}x | {goal} | {note} |")
    lines.append("")
    lines.extend(f"- {n}" for n in notes)
    lines.append("")
    # What the numbers are made of, written by hand from profiles (perf record) of these runs.
    analysis = os.path.join(ROOT, "scripts", "bench-notes.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            lines.append(f.read().rstrip())
        lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
