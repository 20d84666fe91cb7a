"""Where a training step's time goes: each phase timed on its own, then torch.profiler.

    python benchmarks/step_profile.py RECIPE [overrides ...] [--steps 6] [--threads N]

Phases (device synchronised after each, so they add up to more than a free-running
step): draw masks, copy them to the device, forward (target + context + predictor +
loss), backward, optimizer, target update. Then the profiler's top operators by host
and by device time over two steps. A diagnostic, not a benchmark: use `jepakit bench`
for figures to quote.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import torch

from jepakit.compile import compile_modules, static_shapes
from jepakit.data.loader import Batch
from jepakit.method import build_method
from jepakit.optim import Schedules, build_optimizer
from jepakit.recipe import load_recipe
from jepakit.registry import default_registry
from jepakit.runtime import (
    autocast,
    configure_device,
    seed_everything,
    select_device,
    select_dtype,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--json", default=None, help="write phases, categories, top kernels here")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--compile", action="store_true",
                   help="compile the modules as train.compile does (the first steps compile)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe, args.overrides)
    device = select_device(recipe.train.device)
    configure_device(device)
    dtype = select_dtype(recipe.train.precision, device)
    seed_everything(0)
    model, masker = build_method(recipe, default_registry(), device, total_steps=100)
    if args.compile:
        compile_modules(*dict(model.named_children()).values())
        configure_device(device, static_shapes=static_shapes(
            masker, model.encoder.patch_grid, recipe.train.batch_size))
    optimizer = build_optimizer(model.trainable(), recipe.optim)
    schedules = Schedules(recipe.optim, recipe.train)
    batch = recipe.train.batch_size
    h, w = model.encoder.image_size
    images = torch.randn(batch, model.encoder.in_chans, h, w, device=device)
    generator = torch.Generator().manual_seed(0)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(i: int, phases: dict[str, list[float]] | None) -> None:
        marks = [time.perf_counter()]

        def mark() -> None:
            sync()
            marks.append(time.perf_counter())

        masks = masker(batch, model.encoder.patch_grid, generator)
        mark()
        masks = masks.to(device)
        mark()
        schedules.apply(optimizer, i)
        with autocast(device, dtype):
            loss = model(Batch(images=images, labels=None, masks=masks), i).loss
        mark()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mark()
        optimizer.step()
        mark()
        model.after_optimizer_step(i)
        mark()
        if phases is not None:
            for name, a, b in zip(PHASES, marks, marks[1:]):
                phases[name].append(b - a)

    for i in range(2):
        step(i, None)
    phases: dict[str, list[float]] = {name: [] for name in PHASES}
    for i in range(args.steps):
        step(i + 2, phases)
    print(f"{args.recipe} {args.overrides} batch {batch} on {device}, "
          f"{torch.get_num_threads()} threads; median ms per phase:")
    for name, values in phases.items():
        print(f"  {name:<12} {1e3 * statistics.median(values):9.2f}")
    print(f"  {'total':<12} {1e3 * sum(statistics.median(v) for v in phases.values()):9.2f}")

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(2):
            step(i + 10, None)
    table = prof.key_averages()
    if device.type == "cuda":
        shares = device_time_by_category(table)
        busy = sum(shares.values())
        print("device time by category over 2 steps (ms, share of busy time):")
        for name, us in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<12} {us / 1e3:9.1f}  {us / busy:6.1%}")
        if args.json:
            import json
            top = sorted((e for e in table if e.device_type == torch.autograd.DeviceType.CUDA),
                         key=lambda e: -e.self_device_time_total)[:40]
            pathlib.Path(args.json).write_text(json.dumps({
                "recipe": args.recipe, "overrides": args.overrides, "compiled": args.compile,
                "phases_ms": {k: 1e3 * statistics.median(v) for k, v in phases.items()},
                "device_ms_by_category": {k: v / 1e3 for k, v in shares.items()},
                "top_kernels": [{"name": e.key[:160], "ms": e.self_device_time_total / 1e3,
                                 "calls": e.count} for e in top],
            }, indent=1))
    print(table.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=48))
    if device.type == "cuda":
        print(table.table(sort_by="self_cuda_time_total", row_limit=12,
                          max_name_column_width=48))
    return 0


CATEGORIES = (  # first match wins; kernel names of cuBLAS/CUTLASS, flash attention, inductor
    ("attention", ("flash", "fmha", "attention", "sdpa")),
    ("gemm", ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "sm80_", "addmm", "aten::mm",
              "aten::bmm", "matmul")),
    ("optimizer", ("multi_tensor", "adam", "foreach", "lerp")),
    ("copy/cast", ("copy", "memcpy", "to_copy", "cast", "convert")),
    ("layernorm", ("layer_norm", "layernorm")),
    ("triton", ("triton",)),
)


def device_time_by_category(table: object) -> dict[str, float]:
    """Self device time (us) of every kernel, grouped by what the kernel does."""
    shares: dict[str, float] = {}
    for e in table:  # type: ignore[attr-defined]
        if e.device_type != torch.autograd.DeviceType.CUDA or not e.self_device_time_total \
                or getattr(e, "is_user_annotation", False) or "#" in e.key:
            continue  # user annotations (Optimizer.step#AdamW.step) span kernels counted already
        name = e.key.lower()
        kind = next((k for k, words in CATEGORIES if any(w in name for w in words)), "other")
        shares[kind] = shares.get(kind, 0.0) + e.self_device_time_total
    return shares


PHASES = ("masks", "to_device", "forward", "backward", "optimizer", "target")

if __name__ == "__main__":
    sys.exit(main())
