"""Rasterized (quadrant) masking: the "rasterized" row of I-JEPA's Table 6
(Assran et al. 2023, arXiv 2301.08243).

The grid is split into four quadrants at its middle row and column; per image
one quadrant, chosen at random, is the context and the other quadrants are the
targets, in random order. The paper reports 15.5% on 1% ImageNet against
multi-block's 54.2%: a quadrant is a poor, corner-bound context.

On a grid with an odd side the quadrants differ in size; each mask is then
subsampled uniformly at random to the smallest size in the batch (on even
grids every quadrant is kept whole).
"""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v

from jepakit.contracts import Masks
from jepakit.masking import MaskingError, check_grid, equalise


@attrs.define
class RasterizedConfig:
    """I-JEPA Table 6 "rasterized": one quadrant as context, the other three as targets."""

    num_targets: int = attrs.field(default=3, validator=[v.ge(1), v.le(3)])
    """How many of the three other quadrants are targets (the paper: all three)."""


def quadrants(grid: tuple[int, int]) -> torch.Tensor:
    """Boolean [4, N]: top-left, top-right, bottom-left, bottom-right quadrant."""
    gh, gw = grid
    bottom = (torch.arange(gh) >= gh // 2).repeat_interleave(gw)
    right = (torch.arange(gw) >= gw // 2).repeat(gh)
    quadrant = bottom.long() * 2 + right.long()
    return quadrant.unsqueeze(0) == torch.arange(4).unsqueeze(1)


class RasterizedMasker:
    """Per image a random order of the four quadrants: the first is the context,
    the next ``num_targets`` are the targets."""

    def __init__(self, config: RasterizedConfig) -> None:
        self.config = config

    conformance = {"min_grid": (2, 2), "grid_ranks": (2,)}
    """Quadrants need a 2-D grid of at least two rows and two columns."""

    def __call__(self, batch_size: int, patch_grid: tuple[int, int],
                 generator: torch.Generator) -> Masks:
        grid = check_grid(patch_grid, "rasterized masking")
        if min(grid) < 2:
            raise MaskingError(f"rasterized masking needs a grid of at least 2x2, got {grid}")
        order = torch.rand(batch_size, 4, generator=generator).argsort(dim=1)
        quads = quadrants(grid)
        masks = [equalise(quads[order[:, i]], generator) for i in range(self.config.num_targets + 1)]
        return Masks(context=masks[:1], targets=masks[1:])
