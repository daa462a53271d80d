#!/usr/bin/env python3
"""The gate rows of scripts/bench.py (no sandbox, bwrap, --reproducible, each against the same
clone, build and test by hand) for two agentgate builds, in two alternating rounds, with each
row's gate's own time (wall minus the build and test steps it recorded). Used for issue 18 to
compare a change to the gate.

    scripts/bench-gate.py BEFORE AFTER [RUNS]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    before, after = (os.path.abspath(p) for p in sys.argv[1:3])
    runs = int(sys.argv[3]) if len(sys.argv) == 4 else 5
    for name, binary in (("before", before), ("after", after)) * 2:
        bench.AG = binary
        work = tempfile.mkdtemp(prefix="bench-gate-")
        os.makedirs(os.path.join(work, "home"))
        bench.ENV = bench.env_for(os.path.join(work, "home"))
        bench.run([binary, "keygen", "--out", os.path.join(work, "gate")])
        rows = []
        bench.gate_rows(work, rows, [], runs)
        for what, _, ta, tb, _, note in rows:
            print(f"{name}: {what}: {ta * 1000:.0f} ms vs {tb * 1000:.0f} ms = {ta / tb:.2f}x; {note}")


if __name__ == "__main__":
    main()
