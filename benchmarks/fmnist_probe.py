"""Does it learn? Any recipe (I-JEPA, LeJEPA, ...) on Fashion-MNIST for a fixed CPU budget, then a linear probe.

    .venv/bin/python benchmarks/fmnist_probe.py [--budget-s 600] [--threads 1] \\
        [--recipe recipes/ijepa_fmnist.yaml] [overrides ...]

1. Calibrate: time 60 training steps of the recipe on the train shards and set
   ``train.steps`` so the learning-rate and EMA schedules end when the budget does,
   less a 3% margin for what the calibration does not see (monitors, checkpoints,
   logging). With 15 steps and no margin, a run planned 5,791 steps and did 5,280,
   cutting the schedules at 91%; 60 steps read 0.134 s per step for a run that then
   averaged 0.132.
2. Pretrain on ``data/fashion-mnist/train`` (``make data``) under a hard wall-clock
   guard: a lifecycle plugin stops the run once the budget is spent.
3. Linear probe (and 20-NN) on the 10,000 test images, trained on the 60,000 train
   images' frozen, average-pooled features, for: the pretrained target encoder,
   the same architecture with its random initial weights, and raw pixels.

Prints a Markdown table (the one in docs/results.md) and writes everything,
machine load included, to ``OUT/results.json``. Not a test: it takes the budget
plus about five minutes of feature extraction and probing.

One intra-op thread is the default: the data loader's worker process needs about
a third of the second core (it alone reads 1,540 images/s), and two model threads
that share a core with it wait on each other at every operator. Measured on the idle
2-core machine: 140 ms per step with one thread, 164 ms with two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

import jepakit
from jepakit.eval import features as F
from jepakit.eval.protocols import prepare, run_knn, run_linear

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "fashion-mnist"


class TimeBudget:
    """A lifecycle plugin that ends training once ``seconds`` have passed since the
    first step began (checked at every logged step; the last checkpoint is still written)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start: float | None = None
        self.stopped_at: int | None = None

    @jepakit.hookimpl
    def jepakit_on_train_start(self, trainer: Any) -> None:
        self.start = time.perf_counter()

    @jepakit.hookimpl
    def jepakit_on_step_end(self, trainer: Any, step: int, metrics: dict[str, Any]) -> None:
        assert self.start is not None
        if time.perf_counter() - self.start >= self.seconds and step < trainer.total_steps:
            self.stopped_at = step
            trainer.total_steps = step  # the loop ends after this step's checkpoint


def load() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def calibrate(recipe: str, overrides: list[str], steps: int, warmup: int = 3) -> float:
    """Seconds per training step of the real pipeline (shards, loader worker, masks)."""
    from jepakit.engine import build

    trainer = build(recipe, [*overrides, "train.steps=1000000", "logging.progress=false"],
                    write_files=False)
    batches = trainer.batches
    for _ in range(warmup):
        trainer.train_step(next(batches).to(trainer.device))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(next(batches).to(trainer.device))
    per_step = (time.perf_counter() - start) / steps
    del trainer, batches
    return per_step


def pretrain(recipe: str, overrides: list[str], steps: int, budget_s: float, run_dir: Path
             ) -> tuple[dict[str, Any], TimeBudget]:
    from jepakit.engine import build
    from jepakit.registry import Registry

    guard = TimeBudget(budget_s)
    registry = Registry()
    registry.register(guard, name="time_budget")
    trainer = build(recipe, [*overrides, f"train.steps={steps}"], run_dir=run_dir,
                    registry=registry)
    summary = trainer.fit()
    return summary, guard


def probe(source: F.FeatureSource, layers: F.Layers, args: argparse.Namespace,
          cache: Path) -> dict[str, Any]:
    data = prepare(source, str(DATA), layers=layers, batch_size=512, cache_dir=cache,
                   num_workers=0, train_limit=args.train_limit)
    linear = run_linear(source, data, max_iter=args.probe_iters)
    knn = run_knn(source, data)
    return {"source": source.description, "layers": data.layers,
            "feature_dim": linear["feature_dim"], "linear": linear["accuracy"],
            "knn": knn["accuracy"], "weight_decay": linear["weight_decay"],
            "feature_rankme": linear["feature_rankme"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", help="key.path=value recipe overrides")
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "ijepa_fmnist.yaml"))
    p.add_argument("--budget-s", type=float, default=600.0, help="pretraining wall clock")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--calibration-steps", type=int, default=60)
    p.add_argument("--calibration-margin", type=float, default=0.03,
                   help="plan this fraction fewer steps than the calibration allows")
    p.add_argument("--steps", type=int, default=None,
                   help="train this many steps instead of calibrating (the budget still "
                        "stops the run): for tuning runs that share the machine")
    p.add_argument("--probe-iters", type=int, default=100, help="L-BFGS iterations per fit")
    p.add_argument("--out", default=None, help="output folder (default runs/fmnist_probe-TIME)")
    p.add_argument("--train-limit", type=int, default=None,
                   help="probe on the first N training images only (quick tuning runs)")
    p.add_argument("--skip-baselines", action="store_true",
                   help="probe only the pretrained encoder (for tuning)")
    p.add_argument("--probe-only", action="store_true",
                   help="re-run only the probes of an earlier run in --out (its pretraining "
                        "and cached features are kept), e.g. after a change to the probe")
    args = p.parse_args(argv)
    if not (DATA / "train" / "index.json").is_file():
        print(f"no Fashion-MNIST shards in {DATA}: run `make data` first", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the recipe's data paths are relative to the repository root
    out = Path(args.out or ROOT / "runs" / f"fmnist_probe-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
               "torch": torch.__version__, "jepakit": jepakit.__version__, "before": load()}
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine['before']}",
          file=sys.stderr)

    earlier = out / "results.json"
    if args.probe_only:
        if not earlier.is_file():
            print(f"--probe-only: no {earlier} from an earlier run", file=sys.stderr)
            return 2
        before = json.loads(earlier.read_text())
        per_step, steps, train_s = (before["calibrated_s_per_step"], before["planned_steps"],
                                    before["train_wall_s"])
        summary = {"steps": before["steps"], "final_loss": before["final_loss"]}
        stopped_at = before["stopped_by_budget_at"]
        machine = {**before["machine"], "probe_only": True}
        args.overrides, args.budget_s = before["overrides"], before["budget_s"]
    else:
        if args.steps:
            per_step: float | None = None
            steps = args.steps
            print(f"{steps} steps (--steps), at most {args.budget_s:.0f} s", file=sys.stderr)
        else:
            per_step = calibrate(args.recipe, args.overrides, args.calibration_steps)
            steps = max(10, int(args.budget_s * (1 - args.calibration_margin) / per_step))
            print(f"calibration: {per_step:.3f} s/step -> {steps} steps in {args.budget_s:.0f} s",
                  file=sys.stderr)
        start = time.perf_counter()
        summary, guard = pretrain(args.recipe, args.overrides, steps, args.budget_s,
                                  out / "pretrain")
        train_s = time.perf_counter() - start
        stopped_at = guard.stopped_at
        machine["after_training"] = load()

    from jepakit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    cache = out / "features"
    rows = []
    trained = F.from_run(out / "pretrain")
    for layers in ("last", "last4"):
        rows.append({"model": f"{recipe.name}, pretrained", **probe(trained, layers, args, cache)})  # type: ignore[arg-type]
    if not args.skip_baselines:
        random_init = F.from_recipe(args.recipe, tuple(args.overrides))
        for layers in ("last", "last4"):
            rows.append({"model": "same ViT, random init",
                         **probe(random_init, layers, args, cache)})  # type: ignore[arg-type]
        rows.append({"model": "raw pixels", **probe(F.pixels(28, 1), "last", args, cache)})
    machine["after_eval"] = load()
    batch = recipe.train.batch_size
    result = {
        "recipe": args.recipe, "overrides": args.overrides, "budget_s": args.budget_s,
        "calibrated_s_per_step": per_step, "planned_steps": steps,
        "steps": summary["steps"], "stopped_by_budget_at": stopped_at,
        "train_wall_s": train_s, "images_seen": summary["steps"] * batch,
        "epochs": summary["steps"] * batch / 60000, "final_loss": summary["final_loss"],
        "run_dir": str(out / "pretrain"), "machine": machine, "rows": rows,
        "probe_train_images": args.train_limit or 60000,
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
    }
    if args.probe_only:
        result["probe_command"], result["command"] = result["command"], before["command"]
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nresults: {out / 'results.json'}")
    return 0


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Pretraining: {r['steps']} steps x {r['images_seen'] // max(r['steps'], 1)} images "
        f"({r['epochs']:.2f} epochs) in {r['train_wall_s']:.0f} s; {m['cpu']}, {m['threads']} "
        f"torch thread(s); load average {m['before']['load_1m']} before, "
        f"{m['after_training']['load_1m']} after training.",
        "",
        "| features | layers | dim | linear probe top-1 | 20-NN top-1 | RankMe |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['model']} | {row['layers']} | {row['feature_dim']} | "
                     f"{row['linear']:.4f} | {row['knn']:.4f} | {row['feature_rankme']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
