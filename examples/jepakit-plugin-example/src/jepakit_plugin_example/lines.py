"""Whole-line masking: each target is one full row (or column) of patches.

Why this masker: it is short, yet it meets every rule of the masker contract
that jepakit's conformance kit (``jepakit.testing.check_masker``) checks, so it
shows what a third-party masker has to get right:

- equal lengths within a batch: the orientation is drawn once per batch, so every
  target of the batch has the same number of patches (a row has ``w`` patches, a
  column ``h``), and every context the same count;
- randomness only from the ``generator`` it is given (reproducible, per worker);
- context and targets disjoint, every patch reachable as context and as target;
- a grid it cannot serve (no line left for the context) raises
  :class:`jepakit.masking.MaskingError`, a one-line user error;
- a plain module-level class holding its config, so it pickles.

Predicting whole lines from the rest is a harder, more global task than
I-JEPA's blocks, in the spirit of the paper's masking ablations (Assran et al.
2023, arXiv 2301.08243, section 6).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
from attrs import validators as v

import jepakit
from jepakit.masking import MaskingError


@attrs.define
class LinesConfig:
    num_targets: int = attrs.field(default=3, validator=v.gt(0))
    """Target lines per image, each a separate target."""
    orientation: Literal["rows", "columns", "both"] = "both"
    """Rows, columns, or either (drawn per batch)."""
    context_ratio: float = attrs.field(default=1.0, validator=[v.gt(0), v.le(1)])
    """Fraction of the patches outside the targets that form the context."""


class LinesMasker:
    """Fits :class:`jepakit.contracts.Masker`."""

    def __init__(self, config: LinesConfig) -> None:
        self.config = config

    @property
    def conformance(self) -> dict[str, Any]:
        """What jepakit's conformance kit (``jepakit check``) may expect beyond its
        defaults: the smallest grid that leaves a line for the context. Smaller grids raise
        MaskingError, which the kit would skip, so it draws from here up."""
        side = self.config.num_targets + 1
        return {"min_grid": (side, side)}

    def __call__(self, batch_size: int, patch_grid: tuple[int, int],
                 generator: torch.Generator) -> jepakit.Masks:
        cfg = self.config
        h, w = int(patch_grid[0]), int(patch_grid[1])
        rows = cfg.orientation == "rows" or (
            cfg.orientation == "both" and bool(torch.rand(1, generator=generator) < 0.5))
        lines, length = (h, w) if rows else (w, h)
        if cfg.num_targets >= lines:
            kind = "rows" if rows else "columns"
            raise MaskingError(f"lines: {cfg.num_targets} target {kind} leave none for the "
                               f"context on a {h}x{w} grid (lower num_targets)")
        chosen = torch.rand(batch_size, lines, generator=generator).argsort(dim=1)
        chosen = chosen[:, :cfg.num_targets].unsqueeze(-1)  # [B, T, 1]
        along = torch.arange(length)
        index = chosen * w + along if rows else along * w + chosen  # [B, T, length], sorted
        targets = [index[:, j] for j in range(cfg.num_targets)]

        n = h * w
        taken = torch.zeros(batch_size, n, dtype=torch.bool)
        taken.scatter_(1, index.reshape(batch_size, -1), True)
        free = n - cfg.num_targets * length
        keep = max(1, round(cfg.context_ratio * free))
        scores = torch.rand(batch_size, n, generator=generator).masked_fill(taken, 2.0)
        context = scores.argsort(dim=1)[:, :keep].sort(dim=1).values
        return jepakit.Masks(context=[context], targets=targets)
