"""How a masker covers the patch grid: per-patch probability of being in the
context and in a target, and mean mask sizes, measured over many draws.

Used by ``jepakit masks stats`` to compare maskers; knows only the masker
contract, never a masker by name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import torch

from jepakit.masking import grid_size, to_bool


@attrs.define
class Coverage:
    """Per-patch coverage of a masker on one grid, over ``images`` images."""

    grid: tuple[int, ...]
    """(rows, columns), or (frames, rows, columns) for a video grid."""
    images: int
    """Images (clips, on a video grid) drawn."""
    batch_size: int
    context: torch.Tensor
    """Shaped like ``grid``: fraction of images with the patch in a context."""
    target: torch.Tensor
    """Shaped like ``grid``: fraction of images with the patch in at least one target."""
    context_tokens: float
    """Mean context tokens per image (summed over context masks)."""
    target_tokens: float
    """Mean target tokens per image (summed over target masks, as the loss sees them)."""
    context_range: tuple[int, int]
    """Fewest and most context tokens per image over the batches."""
    num_targets: int
    context_lengths: Counter[int] = attrs.field(factory=Counter)
    """Batches per context length (summed over context masks): the length histogram."""
    target_lengths: Counter[int] = attrs.field(factory=Counter)
    """Target masks per target length."""
    per_mask: tuple[list[float], list[float]] = attrs.field(factory=lambda: ([], []))
    """Mean tokens per image of each context mask and of each target mask (V-JEPA's
    mask configurations: ``context[c]`` and ``targets[c]``)."""
    shapes: int = 0
    """Distinct (context lengths, target lengths) combinations drawn: the graphs a
    step compiled for fixed shapes builds."""

    def never(self, which: str) -> torch.Tensor:
        """Boolean, shaped like ``grid``: patches never in the ``"context"`` or ``"target"``."""
        return getattr(self, which) == 0


def measure(masker: Any, grid: tuple[int, ...], batch_size: int, batches: int,
            seed: int = 0) -> Coverage:
    """Draw ``batches`` batches from one generator seeded with ``seed`` (as a
    collate stream does) and count, per patch, how often it is in a context and
    in a target."""
    grid = tuple(int(s) for s in grid)
    n = grid_size(grid)
    generator = torch.Generator().manual_seed(seed)
    in_context = torch.zeros(n, dtype=torch.long)
    in_target = torch.zeros(n, dtype=torch.long)
    context_lengths: list[int] = []
    target_lengths: list[int] = []
    per_target: Counter[int] = Counter()
    shapes: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    num_targets = 0
    sums: tuple[list[int], list[int]] = ([], [])
    for _ in range(batches):
        masks = masker(batch_size, grid, generator)
        context = torch.cat(list(masks.context), dim=1)
        targets = torch.cat(list(masks.targets), dim=1)
        in_context += to_bool(context, n).sum(dim=0)
        in_target += to_bool(targets, n).sum(dim=0)
        context_lengths.append(int(context.shape[1]))
        target_lengths.append(int(targets.shape[1]))
        num_targets = len(masks.targets)
        for total, group in zip(sums, (masks.context, masks.targets)):
            for i, m in enumerate(group):
                if i == len(total):
                    total.append(0)
                total[i] += int(m.shape[1])
        per_target.update(int(t.shape[1]) for t in masks.targets)
        shapes.add((tuple(int(c.shape[1]) for c in masks.context),
                    tuple(int(t.shape[1]) for t in masks.targets)))
    images = batches * batch_size
    return Coverage(
        grid=grid,
        images=images,
        batch_size=batch_size,
        context=(in_context.double() / images).view(grid),
        target=(in_target.double() / images).view(grid),
        context_tokens=sum(context_lengths) / max(len(context_lengths), 1),
        target_tokens=sum(target_lengths) / max(len(target_lengths), 1),
        context_range=(min(context_lengths, default=0), max(context_lengths, default=0)),
        num_targets=num_targets,
        context_lengths=Counter(context_lengths),
        target_lengths=per_target,
        per_mask=([s / batches for s in sums[0]], [s / batches for s in sums[1]]),
        shapes=len(shapes),
    )


def describe_patches(mask: torch.Tensor, limit: int = 6) -> str:
    """Say which patches of a boolean [rows, columns] grid are set, by whole rows
    and columns where possible: e.g. ``"27: row 13, column 13"``. On a video grid
    [frames, rows, columns]: the same picture followed by "in every frame" when every
    frame has the same patches set, else whole frames and then (frame, row, column) cells."""
    count = int(mask.sum())
    if count == 0:
        return "none"
    if mask.dim() == 3:
        return _describe_frames(mask, count, limit)
    rows = [r for r in range(mask.shape[0]) if bool(mask[r].all())]
    cols = [c for c in range(mask.shape[1]) if bool(mask[:, c].all())]
    rest = mask.clone()
    rest[rows, :] = False
    rest[:, cols] = False
    parts = [f"row {r}" for r in rows] + [f"column {c}" for c in cols]
    cells = [(int(r), int(c)) for r, c in rest.nonzero().tolist()]
    parts += [f"{cell}" for cell in cells[:limit]]
    if len(cells) > limit:
        parts.append(f"{len(cells) - limit} more")
    return f"{count}: " + ", ".join(parts)


def _describe_frames(mask: torch.Tensor, count: int, limit: int) -> str:
    if bool((mask == mask[:1]).all()):
        per_frame = describe_patches(mask[0], limit).split(": ", 1)[1]
        return f"{count}: {per_frame} in every frame"
    frames = [t for t in range(mask.shape[0]) if bool(mask[t].all())]
    rest = mask.clone()
    rest[frames] = False
    parts = [f"frame {t}" for t in frames]
    cells = [(int(t), int(r), int(c)) for t, r, c in rest.nonzero().tolist()]
    parts += [f"{cell}" for cell in cells[:limit]]
    if len(cells) > limit:
        parts.append(f"{len(cells) - limit} more")
    return f"{count}: " + ", ".join(parts)


def format_histogram(counts: Counter[int], limit: int = 8) -> str:
    """``"3 distinct: 40 (24%), 59 (45%), 76 (31%)"``, or just the range beyond ``limit`` values."""
    total = sum(counts.values())
    if not total:
        return "none"
    if len(counts) > limit:
        return f"{len(counts)} distinct, {min(counts)} to {max(counts)}"
    parts = ", ".join(f"{k} ({100 * v / total:.0f}%)" for k, v in sorted(counts.items()))
    return f"{len(counts)} distinct: {parts}"


def format_coverage(cov: Coverage) -> list[str]:
    """The ``masks stats`` table: tokens per image, then min/max coverage and never-covered."""
    noun = "clip" if len(cov.grid) == 3 else "image"
    lines = [
        f"tokens per {noun}: context {cov.context_tokens:.1f} "
        f"({cov.context_range[0]} to {cov.context_range[1]} over the batches), "
        f"targets {cov.target_tokens:.1f} in {cov.num_targets} mask(s)",
        f"lengths: context {format_histogram(cov.context_lengths)}; "
        f"targets {format_histogram(cov.target_lengths)}",
    ]
    if len(cov.per_mask[0]) > 1:
        lines.append("per mask: context " + ", ".join(f"{x:.1f}" for x in cov.per_mask[0])
                     + "; targets " + ", ".join(f"{x:.1f}" for x in cov.per_mask[1]))
    lines += [
        f"shapes: {cov.shapes} distinct (context, target) length combinations (a step compiled "
        "for fixed shapes builds one graph each)",
        f"{'coverage':<9} {'min':>7} {'max':>7}  never covered "
        f"{'(frame, row, column)' if len(cov.grid) == 3 else '(row, column)'}",
    ]
    for which in ("context", "target"):
        values: torch.Tensor = getattr(cov, which)
        lines.append(f"{which:<9} {float(values.min()):>7.4f} {float(values.max()):>7.4f}  "
                     f"{describe_patches(cov.never(which))}")
    return lines
