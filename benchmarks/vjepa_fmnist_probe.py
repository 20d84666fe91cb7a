"""Does V-JEPA learn from video? Moving Fashion-MNIST for a fixed CPU budget, then a linear probe.

    .venv/bin/python benchmarks/vjepa_fmnist_probe.py [--budget-s 600] [--threads 1] \\
        [--recipe recipes/vjepa/vjepa_moving_fmnist.yaml] [overrides ...]

1. Calibrate and pretrain exactly as benchmarks/fmnist_probe.py does (schedules planned to
   end with the budget; a lifecycle plugin stops the run once it is spent), on
   ``data/moving-fashion-mnist/train`` (``make data-video``).
2. Features: the target encoder's tokens of one centred clip per video (the recipe's clip
   length and frame step, no random crop or flip), average-pooled over the token grid.
3. Linear probe (and 20-NN) trained on the train clips' features, tested on the test clips,
   for: the pretrained target encoder, the same architecture at its random initial weights,
   and the raw pixels of the clip.

Prints a Markdown table (the one in docs/results.md) and writes everything to
``OUT/results.json``. Not a test: it takes the budget plus a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fmnist_probe as image_benchmark  # noqa: E402  (calibrate, pretrain, machine facts)

import jepakit  # noqa: E402
from jepakit.eval import features as F  # noqa: E402
from jepakit.eval.knn import knn_accuracy  # noqa: E402
from jepakit.eval.probe import linear_probe  # noqa: E402
from jepakit.recipe import Recipe, load_recipe  # noqa: E402
from jepakit.registry import default_registry  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "moving-fashion-mnist"


def clips(recipe: Recipe, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One centred clip per video of ``split``, as the recipe's data section cuts them."""
    params = dict(recipe.spec("dataset").params)
    params.update(urls=str(DATA / split / "index.json"), evaluation=True, shuffle_buffer=0)
    encoder = recipe.spec("encoder").params
    dataset = default_registry().create(
        "dataset", "video_webdataset", params, path="data.params",
        image_size=int(encoder["image_size"]), in_chans=int(encoder.get("in_chans", 3)),
        seed=0, num_frames=int(encoder["num_frames"]))
    xs, ys = [], []
    for x, y in dataset:
        xs.append(x)
        ys.append(int(y))
        if limit and len(xs) >= limit:
            break
    return torch.stack(xs), torch.tensor(ys)


@torch.no_grad()
def encode(encoder: torch.nn.Module | None, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    if encoder is not None:
        encoder.eval()
    return torch.cat([F.encode(encoder, x[i:i + batch]) for i in range(0, len(x), batch)])


def probe(name: str, encoder: torch.nn.Module | None, data: dict[str, torch.Tensor],
          probe_iters: int) -> dict[str, Any]:
    train_x, test_x = encode(encoder, data["train_x"]), encode(encoder, data["test_x"])
    linear = linear_probe(train_x, data["train_y"], test_x, data["test_y"], max_iter=probe_iters)
    knn = knn_accuracy(train_x, data["train_y"], test_x, data["test_y"], k=20)
    return {"model": name, "feature_dim": int(train_x.shape[1]), "linear": linear["accuracy"],
            "knn": knn, "weight_decay": linear["weight_decay"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", help="key.path=value recipe overrides")
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "vjepa" / "vjepa_moving_fmnist.yaml"))
    p.add_argument("--budget-s", type=float, default=600.0, help="pretraining wall clock")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--calibration-steps", type=int, default=30)
    p.add_argument("--steps", type=int, default=None, help="train this many steps instead of "
                   "calibrating (the budget still stops the run)")
    p.add_argument("--probe-iters", type=int, default=100, help="L-BFGS iterations per fit")
    p.add_argument("--limit", type=int, default=None, help="probe on the first N clips per split")
    p.add_argument("--out", default=None, help="output folder (default runs/vjepa_fmnist_probe-TIME)")
    args = p.parse_args(argv)
    if not (DATA / "train" / "index.json").is_file():
        print(f"no Moving Fashion-MNIST shards in {DATA}: run `make data-video` first",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the recipe's data paths are relative to the repository root
    out = Path(args.out or ROOT / "runs" / f"vjepa_fmnist_probe-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": image_benchmark.cpu_model(), "cores": os.cpu_count(),
               "threads": args.threads, "torch": torch.__version__,
               "jepakit": jepakit.__version__, "before": image_benchmark.load()}
    if args.steps:
        per_step, steps = None, args.steps
    else:
        per_step = image_benchmark.calibrate(args.recipe, args.overrides, args.calibration_steps)
        steps = max(10, int(args.budget_s * 0.97 / per_step))
    print(f"{steps} steps in at most {args.budget_s:.0f} s", file=sys.stderr)
    start = time.perf_counter()
    summary, guard = image_benchmark.pretrain(args.recipe, args.overrides, steps, args.budget_s,
                                              out / "pretrain")
    train_s = time.perf_counter() - start
    machine["after_training"] = image_benchmark.load()

    recipe = load_recipe(args.recipe, args.overrides)
    train_x, train_y = clips(recipe, "train", args.limit)
    test_x, test_y = clips(recipe, "test", args.limit)
    data = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
    rows = [probe(f"{recipe.name}, pretrained", F.from_run(out / "pretrain").encoder, data,
                  args.probe_iters),
            probe("same ViT, random init", F.from_recipe(args.recipe, tuple(args.overrides)).encoder,
                  data, args.probe_iters),
            probe("raw pixels", None, data, args.probe_iters)]
    machine["after_eval"] = image_benchmark.load()
    result = {
        "recipe": args.recipe, "overrides": args.overrides, "budget_s": args.budget_s,
        "calibrated_s_per_step": per_step, "planned_steps": steps, "steps": summary["steps"],
        "stopped_by_budget_at": guard.stopped_at, "train_wall_s": train_s,
        "clips_seen": summary["steps"] * recipe.train.batch_size,
        "final_loss": summary["final_loss"], "probe_clips": [len(train_y), len(test_y)],
        "clip_shape": list(train_x.shape[1:]), "run_dir": str(out / "pretrain"),
        "machine": machine, "rows": rows,
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nresults: {out / 'results.json'}")
    return 0


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Pretraining: {r['steps']} steps, {r['clips_seen']} clips of {r['clip_shape']} in "
        f"{r['train_wall_s']:.0f} s; {m['cpu']}, {m['threads']} torch thread(s); load average "
        f"{m['before']['load_1m']} before, {m['after_training']['load_1m']} after training. "
        f"Probe: {r['probe_clips'][0]} train clips, {r['probe_clips'][1]} test clips.",
        "",
        "| features | dim | linear probe top-1 | 20-NN top-1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['model']} | {row['feature_dim']} | {row['linear']:.4f} | "
                     f"{row['knn']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
