"""Time every registered masker: masks for one batch (default 128) on a 14x14 grid, one thread.

    .venv/bin/python benchmarks/masking_speed.py [--batch-size 128] [--grid 14 14] [--repeats 200]
    .venv/bin/python benchmarks/masking_speed.py --batch-size 64 --grid 8 16 16   # video

A masker whose config has a ``Literal`` field (e.g. a ``mode``) is timed once per
value; on a video grid (frames, rows, columns) only maskers that support it are timed.
Prints the fastest, median and 90th-percentile milliseconds per batch (on a shared
machine the fastest is the least disturbed by other processes) and the median as a
multiple of random masking's in the same run (one random key per patch and a
partition: the floor for any masker that picks patches), which compares across
machines. The budget is 3 ms on one core for images (the official I-JEPA collator
takes about 32 ms).
"""

from __future__ import annotations

import argparse
import statistics
import time
import typing
from collections.abc import Iterator
from typing import Any

import attrs
import torch

from jepakit.config import field_types
from jepakit.masking import format_grid, grid_ranks
from jepakit.registry import Component, default_registry


def variants(component: Component) -> Iterator[dict[str, Any]]:
    """Default params, then one params dict per value of each Literal field."""
    yield {}
    if not attrs.has(component.config):
        return
    defaults = {f.name: f.default for f in attrs.fields(component.config)}
    for name, tp in field_types(component.config).items():
        if typing.get_origin(tp) is typing.Literal:
            for value in typing.get_args(tp):
                if value != defaults.get(name):
                    yield {name: value}


def time_masker(masker: Any, batch_size: int, grid: tuple[int, int], repeats: int) -> list[float]:
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        masker(batch_size, grid, generator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        masker(batch_size, grid, generator)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--grid", type=int, nargs="+", default=[14, 14],
                   help="ROWS COLUMNS, or FRAMES ROWS COLUMNS for a video grid")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    registry = default_registry()
    grid = tuple(args.grid)
    if len(grid) not in (2, 3):
        p.error("--grid takes 2 or 3 sides")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, batch {args.batch_size}, "
          f"grid {format_grid(grid)}, {args.repeats} repeats")
    baseline = statistics.median(time_masker(registry.create("masker", "random"),
                                             args.batch_size, grid, args.repeats))
    print(f"{'masker':<36} {'min ms':>8} {'median ms':>10} {'p90 ms':>8} {'x random':>9}")
    for name, component in sorted(registry.components("masker").items()):
        for params in variants(component):
            masker = registry.create("masker", name, params)
            if len(grid) not in grid_ranks(masker):
                continue
            times = time_masker(masker, args.batch_size, grid, args.repeats)
            label = name + "".join(f" {k}={v}" for k, v in params.items())
            p90 = statistics.quantiles(times, n=10)[-1]
            median = statistics.median(times)
            print(f"{label:<36} {min(times):>8.3f} {median:>10.3f} {p90:>8.3f} "
                  f"{median / baseline:>9.1f}")


if __name__ == "__main__":
    main()
