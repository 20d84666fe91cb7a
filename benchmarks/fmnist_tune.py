"""Quick A/B runs for tuning the Fashion-MNIST recipe: train, then a small probe.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fmnist_tune.py [--budget-s 200] \\
        [--recipe recipes/ijepa_fmnist.yaml] [overrides ...]

Trains the recipe in this process for ``--budget-s`` seconds of *training* time
(data waits and steps; the probes are not counted) with the schedules stretched so
that the learning rate and EMA momentum stay near their starting values, then
prints one JSON line: steps done, a quick linear probe (penalties 1e-3 and 1e-2, 60
L-BFGS iterations) and 20-NN on ``--train-n`` training and ``--test-n`` test images
(last-4 and last-layer features of the target encoder), and the collapse monitors on
one batch. Candidates compared this way
rank as the full 10-minute benchmark (``fmnist_probe.py``) would, at a fraction of
its cost; the figures are lower than the full probe's, which fits on 60,000 images.

The probe's test set decides the noise: 5,000 images give a standard error of about
0.6 points near 80% accuracy, so differences under about 1.5 points are not results.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "fashion-mnist"
QUICK_DECAYS = (1e-3, 1e-2)  # the full probe's grid goes to 1e-6; this is for ranking only
QUICK_ITERS = 60


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", help="key.path=value recipe overrides")
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "ijepa_fmnist.yaml"))
    p.add_argument("--budget-s", type=float, default=200.0, help="training time")
    p.add_argument("--steps", type=int, default=None,
                   help="train this many steps instead of --budget-s (runs sharing the machine)")
    p.add_argument("--train-n", type=int, default=10_000)
    p.add_argument("--test-n", type=int, default=5_000)
    args = p.parse_args(argv)
    if not (DATA / "train" / "index.json").is_file():
        print(f"no Fashion-MNIST shards in {DATA}: run `make data` first")
        return 2
    torch.set_num_threads(1)
    os.chdir(ROOT)

    from jepakit_monitors.collapse import collapse_metrics

    from jepakit.engine import build
    from jepakit.eval.features import plain_target, source_for
    from jepakit.eval.knn import knn_accuracy
    from jepakit.eval.probe import linear_probe
    from jepakit.eval.protocols import prepare

    trainer = build(args.recipe, [*args.overrides, "train.steps=100000", "logging.progress=false",
                                  "monitors.aim=false"], write_files=False)
    batches = trainer.batches
    steps, train_s, loss = 0, 0.0, None
    while (steps < args.steps) if args.steps else (train_s < args.budget_s):
        start = time.perf_counter()
        batch = next(batches).to(trainer.device)
        loss = trainer.train_step(batch)  # read once at the end: no sync per step
        train_s += time.perf_counter() - start
        steps += 1

    assert trainer.last_result is not None
    monitors = collapse_metrics(trainer.last_result.outputs)  # the last step's own outputs
    encoder = plain_target(trainer.model)
    source = source_for(trainer.recipe, encoder, "target encoder in training", "not cached")
    probe_data = prepare(source, str(DATA), layers="last4", use_cache=False, progress=False,
                         train_limit=args.train_n, test_limit=args.test_n)
    a, train_y = probe_data.train.x, probe_data.train.y
    b, test_y = probe_data.test.x, probe_data.test.y
    width = encoder.embed_dim

    def probe(train: torch.Tensor, test: torch.Tensor) -> float:
        return linear_probe(train, train_y, test, test_y, weight_decays=QUICK_DECAYS,
                            max_iter=QUICK_ITERS)["accuracy"]

    print(json.dumps({
        "overrides": args.overrides, "steps": steps, "train_s": round(train_s, 1),
        "loss": None if loss is None else round(float(loss), 4),
        "linear_last4": round(probe(a, b), 4),
        "linear_last": round(probe(a[:, -width:], b[:, -width:]), 4),
        "knn_last": round(knn_accuracy(a[:, -width:], train_y, b[:, -width:], test_y), 4),
        **{k: round(v, 3) for k, v in monitors.items()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
