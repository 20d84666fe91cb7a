"""Single-block masking: the "block" row of I-JEPA's Table 6 (Assran et al.
2023, arXiv 2301.08243) and the usual block masking of earlier inpainting work.

Per image, one large rectangular target block (scale 0.6 in the paper's
ablation); the context is the image complement. The paper reports 20.2% on 1%
ImageNet against multi-block's 54.2%: one big target leaves little context, and
the context borders the target everywhere.

The block shape is drawn once per batch (scale and log aspect independently),
so every image has a target of the same length; its position is drawn per image
over the whole grid.
"""

from __future__ import annotations

import attrs
import torch

from jepakit.contracts import Masks
from jepakit.masking import (
    MaskingError,
    block_positions,
    block_shape,
    check_grid,
    rect_indices,
    to_bool,
)

from ._checks import interval


@attrs.define
class BlockConfig:
    """I-JEPA Table 6 "block": one target of scale 0.6, the context is the complement."""

    target_scale: tuple[float, float] = (0.6, 0.6)
    """Fraction of the grid the target block covers (low, high)."""
    target_aspect: tuple[float, float] = (0.75, 1.5)
    """Height / width of the target block (low, high); the paper does not give it,
    this is multi-block's target aspect."""

    def __attrs_post_init__(self) -> None:
        interval("target_scale", self.target_scale, high=1.0)
        interval("target_aspect", self.target_aspect)


def leave_one(grid: tuple[int, int], shape: tuple[int, int]) -> tuple[int, int]:
    """Shrink a block that covers the whole grid by one row or column (whichever
    loses fewer patches), so the context keeps at least one patch."""
    h, w = shape
    if h * w < grid[0] * grid[1]:
        return h, w
    return (h, w - 1) if h <= w else (h - 1, w)


class BlockMasker:
    """One ``target_scale`` block per image as the target; the rest is the context."""

    def __init__(self, config: BlockConfig) -> None:
        self.config = config

    conformance = {"min_grid": (1, 2), "context_reachable": False, "grid_ranks": (2,)}
    """Any 2-D grid of two patches or more. A block wider (taller) than half the grid
    always covers the middle columns (rows), so those are never in the context:
    with the paper's scale of 0.6 the centre of the image is always a target."""

    def __call__(self, batch_size: int, patch_grid: tuple[int, int],
                 generator: torch.Generator) -> Masks:
        grid = check_grid(patch_grid, "block masking")
        n = grid[0] * grid[1]
        if n < 2:
            raise MaskingError(f"block masking needs at least 2 patches, got a {grid} grid")
        shape = leave_one(grid, block_shape(grid, self.config.target_scale,
                                            self.config.target_aspect, generator))
        top, left = block_positions((batch_size,), grid, shape, generator)
        target = rect_indices(grid, top, left, *shape)
        context = (~to_bool(target, n)).nonzero()[:, 1].view(batch_size, n - target.shape[1])
        return Masks(context=[context], targets=[target])
