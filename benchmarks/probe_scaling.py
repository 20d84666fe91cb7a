"""Time and peak memory of the linear probe (``jepakit.eval.probe.linear_probe``) over a
grid of feature widths d and training-set sizes n, on synthetic fp16 features.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/probe_scaling.py \\
        [--d 512,5000,50000,150000] [--n 1000,10000,60000] [--test 1000] \\
        [--budget-gb 12] [--timeout-s 1200] [--classes 10] [--json OUT]

For the ImageNet-scale memory claim (1.28 M x 1,280 features, 1,000 classes, in 24 GB),
measure a tenth and extrapolate (every term but the d x d matrices is linear in n):
``--d 1280 --n 128000 --classes 1000 --max-iter 3 --test 5000``.

Each (d, n) runs in its own process, so its peak resident memory (``ru_maxrss``) is
its own; it includes the features themselves (n x d fp16). A combination whose
estimated memory exceeds ``--budget-gb`` is skipped and its estimate printed.
Features: 10 Gaussian classes in a 64-dimensional subspace plus isotropic noise,
written in row blocks as fp16 (as the feature cache stores them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def estimate_gb(n: int, d: int, test: int) -> float:
    """Features (fp16) plus the solver's working set: primal d x d (float64 and its
    eigenvectors, float32 whitened features), or span n x n (Gram, eigenvectors, the
    reduced features twice)."""
    data = (n + test) * d * 2
    if d <= n:
        work = 3 * d * d * 8 + n * d * 4 * 2
    else:
        work = 6 * n * n * 8 + test * n * 4 + (n + test) * 2 ** 24 // max(n + test, 1) * 4 * 3
    return (data + work) / 2 ** 30


def features(n: int, d: int, seed: int, classes: int = 10) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(64, d, generator=torch.Generator().manual_seed(1)) / 8
    means = torch.randn(classes, 64, generator=torch.Generator().manual_seed(2)) * 0.6
    y = torch.randint(classes, (n,), generator=g)
    x = torch.empty(n, d, dtype=torch.float16)
    step = max(1, 2 ** 24 // d)
    for i in range(0, n, step):
        j = min(i + step, n)
        latent = means[y[i:j]] + torch.randn(j - i, 64, generator=g)
        x[i:j] = (latent @ basis + torch.randn(j - i, d, generator=g)).half()
    return x, y


def one(d: int, n: int, test: int, max_iter: int, classes: int) -> dict[str, Any]:
    import torch

    from jepakit.eval.probe import linear_probe

    train_x, train_y = features(n, d, 0, classes)
    test_x, test_y = features(test, d, 1, classes)
    start = time.perf_counter()
    r = linear_probe(train_x, train_y, test_x, test_y, max_iter=max_iter)
    probe_s = time.perf_counter() - start
    return {"d": d, "n": n, "test": test, "classes": classes, "max_iter": max_iter, "probe_s": round(probe_s, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
            "accuracy": r["accuracy"], "weight_decay": r["weight_decay"], "solver": r["solver"],
            "threads": torch.get_num_threads()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", default="512,5000,50000,150000")
    p.add_argument("--n", default="1000,10000,60000")
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--budget-gb", type=float, default=12.0)
    p.add_argument("--timeout-s", type=float, default=1200)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--json", dest="json_path")
    p.add_argument("--one", nargs=2, type=int, metavar=("D", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(*args.one, args.test, args.max_iter, args.classes)))
        return 0
    rows = []
    print("| d | n | solver | probe s | peak RSS GB | test acc |\n| ---: | ---: | --- | ---: | ---: | ---: |")
    for d in (int(v) for v in args.d.split(",")):
        for n in (int(v) for v in args.n.split(",")):
            est = estimate_gb(n, d, args.test)
            row: dict[str, Any] = {"d": d, "n": n, "estimate_gb": round(est, 1)}
            if est > args.budget_gb:
                row["skipped"] = f"estimated {est:.0f} GB > --budget-gb {args.budget_gb:g}"
            else:
                cmd = [sys.executable, __file__, "--one", str(d), str(n), "--test",
                       str(args.test), "--max-iter", str(args.max_iter),
                       "--classes", str(args.classes)]
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                         timeout=args.timeout_s, env=os.environ)
                    row.update(json.loads(out.stdout.strip().splitlines()[-1]))
                except subprocess.TimeoutExpired:
                    row["skipped"] = f"over --timeout-s {args.timeout_s:g}"
                except subprocess.CalledProcessError as exc:
                    row["skipped"] = f"failed: {exc.stderr.strip().splitlines()[-1:]}"
            rows.append(row)
            if "skipped" in row:
                print(f"| {d} | {n} | skipped: {row['skipped']} | | | |", flush=True)
            else:
                print(f"| {d} | {n} | {row['solver']} | {row['probe_s']} | "
                      f"{row['peak_rss_gb']} | {row['accuracy']:.3f} |", flush=True)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"rows": rows, "load": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
