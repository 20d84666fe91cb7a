"""Time full training steps on synthetic data and compare with the machine's limit.

A step here is everything a real step does: draw masks, target forward,
context forward, predictor, loss, backward, optimizer and target update. The
limit is the device's dense peak on a GPU, and on a CPU the throughput of a
large matmul in the same dtype measured in the same run, so the fraction
answers "how close to this machine's best is the model's arithmetic?".
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from jepakit import __version__
from jepakit.compile import compilations, compile_modules, static_shapes, warn_if_unbucketed
from jepakit.contracts import Masks
from jepakit.data.loader import Batch
from jepakit.errors import JepakitError
from jepakit.flops import train_step_flops
from jepakit.inspect import without_recompute
from jepakit.method import build_method, sample_shape
from jepakit.optim import Schedules, build_optimizer
from jepakit.recipe import Recipe, load_recipe
from jepakit.registry import Registry, default_registry
from jepakit.runtime import (
    autocast,
    configure_device,
    cpu_has_native_bf16,
    seed_everything,
    select_device,
    select_dtype,
)

# Dense bf16 tensor-core peaks (FLOP/s, without sparsity) by device-name fragment.
GPU_BF16_PEAK = {
    "H200": 989e12, "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12,
    "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12, "V100": 125e12,
}


def gpu_peak(device: torch.device) -> float | None:
    name = torch.cuda.get_device_name(device)
    for fragment, peak in GPU_BF16_PEAK.items():
        if fragment in name:
            return peak
    return None


def matmul_throughput(device: torch.device, dtype: torch.dtype, n: int = 2048,
                      repeats: int = 10, budget_s: float = 5.0) -> float:
    """FLOP/s of an n x n by n x n product in ``dtype`` on ``device`` (best of ``repeats``),
    run as ``F.linear``, the kernel the model's layers use: on a CPU without native bf16,
    a bf16 ``a @ b`` takes a generic path 20x slower than bf16 ``linear`` (oneDNN).

    Stops early once ``budget_s`` has passed (after at least one timed run): an emulated
    dtype, such as bf16 on a CPU without AVX512-BF16, takes over 10 s per matmul."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    began = time.perf_counter()
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        F.linear(a, b).sum()
        _sync(device)
        if i == 0:
            continue  # warm-up: first-call set-up is not throughput
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() - began > budget_s:
            break
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def mask_key(masks: Masks) -> tuple[int, ...]:
    """Token counts of every context and target block: all a step's FLOPs depend on."""
    return tuple(int(m.shape[1]) for m in masks.context + masks.targets)


_META_MODEL: Any = None  # set before forking FLOP-counting workers


def _count_one(masks: Masks) -> tuple[tuple[int, ...], int]:
    assert _META_MODEL is not None
    return mask_key(masks), train_step_flops(_META_MODEL, masks)


class FlopCounting:
    """FLOPs per image of each distinct mask size in ``planned``.

    Counting on the meta device takes seconds per mask size for a ViT-H (Python
    dispatch of thousands of ops), so while a GPU runs the timed steps, forked
    worker processes count (started before CUDA is initialised); on a CPU the
    count waits until the timing is over, so it never competes with it.
    """

    def __init__(self, meta_model: Any, planned: Sequence[Masks], parallel: bool) -> None:
        global _META_MODEL
        _META_MODEL = meta_model
        distinct = {mask_key(m): m for m in planned}
        self._todo = list(distinct.values())
        self._pending: Any = None
        workers = min(len(self._todo), max((os.cpu_count() or 1) - 2, 0), 8)
        if parallel and workers > 1:
            self._pool = mp.get_context("fork").Pool(workers)
            self._pending = self._pool.map_async(_count_one, self._todo)

    def result(self) -> dict[tuple[int, ...], int]:
        if self._pending is None:
            return dict(map(_count_one, self._todo))
        try:
            return dict(self._pending.get())
        finally:
            self._pool.close()
            self._pool.join()


class StepRunner:
    """One configuration's model, optimizer and synthetic batch: :meth:`step` runs a
    full training step on given masks (shared by ``jepakit bench`` and the
    interleaved comparison in ``benchmarks/compile_ab.py``)."""

    def __init__(self, recipe: Recipe, registry: Registry, device: torch.device,
                 total_steps: int, compile_step: bool = False) -> None:
        self.device = device
        self.dtype = select_dtype(recipe.train.precision, device)
        seed_everything(recipe.train.seed)
        self.model, self.masker = build_method(recipe, registry, device, total_steps=total_steps)
        self.modules = dict(self.model.named_children())
        if compile_step:
            compile_modules(*self.modules.values())
        self.optimizer = build_optimizer(self.model.trainable(), recipe.optim)
        self.schedules = Schedules(recipe.optim, recipe.train)
        self.batch = recipe.train.batch_size
        shape = sample_shape(getattr(self.model, "encoder"))  # noqa: B009 (clips for video)
        self.images = torch.randn(self.batch, *shape, device=device)

    def step(self, masks: Masks, step: int) -> torch.Tensor:
        """One step, timed from here to its last kernel by the caller."""
        batch = Batch(images=self.images, labels=None, masks=masks.to(self.device))
        self.schedules.apply(self.optimizer, step)
        with autocast(self.device, self.dtype):
            loss = self.model(batch, step).loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.model.after_optimizer_step(step)
        return loss

    def compilations(self) -> dict[str, int]:
        return {name: compilations(m) for name, m in self.modules.items()}


def _free_running(runner: StepRunner, masker: Any, batch: int, grid: tuple[int, ...], seed: int,
                  warmup: int, steps: int) -> float:
    """Mean step time over ``steps`` steps run back to back, as the engine runs them: no
    sync between steps, so the host draws the next masks while the device still works
    on the previous step. The same masks as the timed steps (same generator state)."""
    generator = torch.Generator().manual_seed(seed)
    for step in range(warmup):
        runner.step(masker(batch, grid, generator), step)
    _sync(runner.device)
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        runner.step(masker(batch, grid, generator), step)
    _sync(runner.device)
    return (time.perf_counter() - start) / steps


def run_bench(recipe_path: str, overrides: Sequence[str] = (), steps: int = 10, warmup: int = 3,
              registry: Registry | None = None, compile_model: bool = False) -> dict[str, Any]:
    registry = registry or default_registry()
    recipe = load_recipe(recipe_path, overrides, registry)
    device = select_device(recipe.train.device)
    configure_device(device)
    dtype = select_dtype(recipe.train.precision, device)
    batch = recipe.train.batch_size
    # The masks every step will draw are known up front (the same generator state), so
    # their FLOPs are counted off the timed path.
    meta_model, masker = build_method(without_recompute(recipe, registry), registry, "meta")
    if masker is None:
        raise JepakitError(f"jepakit bench times masked methods; method "
                           f"'{recipe.spec('method').name}' draws no masks")
    grid = tuple(meta_model.encoder.patch_grid)
    generator = torch.Generator().manual_seed(recipe.train.seed)
    plan_generator = torch.Generator()
    plan_generator.set_state(generator.get_state())
    planned = [masker(batch, grid, plan_generator)
               for _ in range(warmup + steps)][warmup:]
    counting = FlopCounting(meta_model, planned, parallel=device.type == "cuda")
    if compile_model:
        warn_if_unbucketed(masker, grid, batch)
        configure_device(device, static_shapes=static_shapes(masker, grid, batch))

    runner = StepRunner(recipe, registry, device, warmup + steps, compile_model)
    compile_s = 0.0
    if compile_model:  # compile every shape the timed steps meet before timing them
        _sync(device)
        start = time.perf_counter()
        for masks in {mask_key(m): m for m in planned}.values():
            runner.step(masks, 0)
        _sync(device)
        compile_s = time.perf_counter() - start
    times = []
    for step in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        masks = masker(batch, grid, generator)
        loss = runner.step(masks, step)
        _sync(device)
        elapsed = time.perf_counter() - start
        if step >= warmup:
            times.append(elapsed)
            if mask_key(masks) != mask_key(planned[step - warmup]):
                raise RuntimeError("the masker drew other masks from the same generator state")
    free_s = _free_running(runner, masker, batch, grid, recipe.train.seed, warmup, steps)
    flops = counting.result()
    median = statistics.median(times)
    flops_per_image = statistics.mean(flops[mask_key(m)] for m in planned)
    achieved = flops_per_image * batch / median
    limit_dtype = dtype or torch.float32
    if device.type == "cuda":
        limit, limit_source = gpu_peak(device), "dense bf16 peak of " + torch.cuda.get_device_name(device)
        if limit is None:
            limit, limit_source = matmul_throughput(device, limit_dtype, 8192), "measured matmul"
    else:
        limit, limit_source = matmul_throughput(device, limit_dtype), "measured 2048^3 matmul"
    return {
        "recipe": recipe_path,
        "overrides": list(overrides),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "precision": str(limit_dtype).replace("torch.", ""),
        "batch_size": batch,
        "steps": steps,
        "warmup": warmup,
        "compiled": compile_model,
        "compilations": runner.compilations() if compile_model else None,
        "compile_s": compile_s if compile_model else None,
        "mask_shapes": len({mask_key(m) for m in planned}),
        "median_step_s": median,
        "min_step_s": min(times),
        "images_per_s": batch / median,
        "free_running_step_s": free_s,
        "free_running_images_per_s": batch / free_s,
        "free_running_fraction_of_limit": (achieved * median / free_s / limit) if limit else None,
        "peak_memory_bytes": peak_memory_bytes(device),
        "model_flops_per_image": flops_per_image,
        "achieved_flops_per_s": achieved,
        "limit_flops_per_s": limit,
        "limit_source": limit_source,
        "fraction_of_limit": achieved / limit if limit else None,
        "final_loss": float(loss.detach()),
        "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
        "torch": torch.__version__,
        "jepakit": __version__,
    }
