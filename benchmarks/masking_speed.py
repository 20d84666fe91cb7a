"""Time every registered masker: masks for one batch (default 128) on a 14x14 grid, one thread.

    .venv/bin/python benchmarks/masking_speed.py [--batch-size 128] [--grid 14 14] [--repeats 200]

A masker whose config has a ``Literal`` field (e.g. a ``mode``) is timed once per
value. Prints the fastest, median and 90th-percentile milliseconds per batch (on a
shared machine the fastest is the least disturbed by other processes); the budget
is 3 ms on one core (the official I-JEPA collator takes about 32 ms).
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
    p.add_argument("--grid", type=int, nargs=2, default=(14, 14))
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    registry = default_registry()
    grid = (args.grid[0], args.grid[1])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, batch {args.batch_size}, "
          f"grid {grid[0]}x{grid[1]}, {args.repeats} repeats")
    print(f"{'masker':<28} {'min ms':>8} {'median ms':>10} {'p90 ms':>8}")
    for name, component in sorted(registry.components("masker").items()):
        for params in variants(component):
            masker = registry.create("masker", name, params)
            times = time_masker(masker, args.batch_size, grid, args.repeats)
            label = name + "".join(f" {k}={v}" for k, v in params.items())
            p90 = statistics.quantiles(times, n=10)[-1]
            print(f"{label:<28} {min(times):>8.3f} {statistics.median(times):>10.3f} {p90:>8.3f}")


if __name__ == "__main__":
    main()
