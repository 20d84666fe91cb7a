"""The linear probe against an earlier version of itself, on the same features of a run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_vs_previous.py RUN \\
        [--data data/fashion-mnist] [--layers last4] [--commit 975f5b3]

Reads ``jepakit/eval/probe.py`` as it was at ``--commit`` (``git show``; the version
whose figures are in docs/results.md, which whitened with a d x d eigendecomposition
and recomputed it for every fit), runs it and today's probe on the run's cached
features (float32 for the old one, as it was fed then), and prints both accuracies and
times. The acceptance bar for the new solver: within 0.2 points where the old one worked.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def previous_probe(commit: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{commit}:jepakit/eval/probe.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("previous_probe")
    exec(compile(source, f"{commit}:jepakit/eval/probe.py", "exec"), module.__dict__)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--data", default=str(ROOT / "data" / "fashion-mnist"))
    p.add_argument("--layers", default="last4")
    p.add_argument("--commit", default="975f5b3")
    args = p.parse_args()

    from jepakit.eval import from_run, prepare
    from jepakit.eval.probe import linear_probe

    old = previous_probe(args.commit)
    source = from_run(args.run)
    d = prepare(source, args.data, layers=args.layers, progress=False)
    rows = []
    for name, fn, cast in (("previous", old.linear_probe, True), ("now", linear_probe, False)):
        tx, sx = (d.train.x.float(), d.test.x.float()) if cast else (d.train.x, d.test.x)
        start = time.perf_counter()
        r = fn(tx, d.train.y, sx, d.test.y, max_iter=100)
        rows.append((name, r["accuracy"], r["weight_decay"], time.perf_counter() - start))
    print(f"{source.description}, {args.layers}, {tuple(d.train.x.shape)} train features")
    print("| probe | top-1 | weight decay | seconds |\n| --- | ---: | ---: | ---: |")
    for name, acc, wd, s in rows:
        print(f"| {name} | {acc:.4f} | {wd:g} | {s:.0f} |")
    print(f"difference: {100 * (rows[1][1] - rows[0][1]):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
