"""What the engine's mask check (jepakit/maskcheck.py) costs, against a training step.

    OMP_NUM_THREADS=1 python benchmarks/maskcheck_cost.py [RECIPE] [overrides ...]

Builds the recipe (default ``recipes/ijepa_tiny.yaml``) on this machine and times, in
one process: drawing one batch of masks, checking it, and one training step; then the
same draw and check for the ViT-H/14 recipe's masker at batch 128 (its 16x16 grid).
The ratio check / step is the cost of checking every batch; the run checks one batch
in ``CHECK_EVERY``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

import jepakit
from jepakit.maskcheck import CHECK_EVERY, check_batch
from jepakit.method import build_method
from jepakit.recipe import load_recipe


def per_call(f: Callable[[], object], n: int) -> float:
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


def main(argv: list[str]) -> None:
    recipe = argv[0] if argv else "recipes/ijepa_tiny.yaml"
    overrides = ["logging.progress=false", "monitors.probe_samples=0", *argv[1:]]
    trainer = jepakit.build(recipe, overrides, write_files=False)
    stream, size = trainer.masks, trainer.recipe.train.batch_size
    assert stream is not None, "the recipe's method draws no masks"
    grid = stream.patch_grid
    masks = stream.masker(size, grid, stream.generator(3))
    draw = per_call(lambda: stream.masker(size, grid, stream.generator(3)), 200)
    check = per_call(lambda: check_batch(masks, size, grid, "m", stream.expect, "x"), 200)
    batch = next(trainer.batches).to(trainer.device)
    step = per_call(lambda: trainer.train_step(batch), 20)
    print(f"{recipe}: batch {size}, grid {grid[0]}x{grid[1]}: draw {draw * 1e3:.3f} ms, "
          f"check {check * 1e3:.3f} ms, training step {step * 1e3:.1f} ms")
    print(f"  check / step: {check / step:.1e} checking every batch, "
          f"{check / step / CHECK_EVERY:.1e} checking one in {CHECK_EVERY}")
    registry = jepakit.default_registry()
    vith = load_recipe("recipes/ijepa_vith14.yaml", [], registry)
    _, masker = build_method(vith, registry, device="meta")
    big_grid = (16, 16)
    big = masker(128, big_grid, torch.Generator().manual_seed(0))
    draw = per_call(lambda: masker(128, big_grid, torch.Generator().manual_seed(0)), 50)
    check = per_call(lambda: check_batch(big, 128, big_grid, "m", stream.expect, "x"), 50)
    print(f"recipes/ijepa_vith14.yaml masker: batch 128, grid 16x16: draw {draw * 1e3:.2f} ms, "
          f"check {check * 1e3:.2f} ms")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
