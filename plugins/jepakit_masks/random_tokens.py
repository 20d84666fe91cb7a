"""Random token masking (MAE, He et al. 2021, arXiv 2111.06377), the "random"
row of I-JEPA's Table 6 (Assran et al. 2023, arXiv 2301.08243).

Per image, a uniformly random ``mask_ratio`` of the patches is the single
target; the context is every other patch. The paper's ablation uses a ratio of
0.6 (context ratio 0.4) and reaches 17.6% on 1% ImageNet against multi-block's
54.2%: scattered targets are predictable from neighbouring context patches, so
the task stays low-level.

It ignores the grid's layout, so it works on grids of any rank: image grids
(rows, columns) and video grids (frames, rows, columns) alike (VideoMAE's "random"
masking, Tong et al. 2022, arXiv 2203.12602, when used on a video grid).
"""

from __future__ import annotations

import attrs
import torch

from jepakit.contracts import Masks
from jepakit.masking import (
    MaskingError,
    format_grid,
    grid_shape,
    grid_size,
    random_order,
    smallest_k,
)

from ._checks import ratio


@attrs.define
class RandomConfig:
    """I-JEPA Table 6 "random": 60% of the patches are the target (MAE masks 75%)."""

    mask_ratio: float = 0.6
    """Fraction of the patches in the target, rounded to whole patches (at least
    one patch in the target and one in the context)."""

    def __attrs_post_init__(self) -> None:
        ratio("mask_ratio", self.mask_ratio)


class RandomMasker:
    """One random target of ``round(mask_ratio * N)`` patches; the context is the rest."""

    def __init__(self, config: RandomConfig) -> None:
        self.config = config

    conformance = {"min_grid": (1, 2), "grid_ranks": (2, 3)}
    """Any grid of two patches or more, image or video."""

    def __call__(self, batch_size: int, patch_grid: tuple[int, ...],
                 generator: torch.Generator) -> Masks:
        n = grid_size(grid_shape(patch_grid))
        if n < 2:
            raise MaskingError(f"random masking needs at least 2 patches, got a "
                               f"{format_grid(patch_grid)} grid")
        k = min(max(round(self.config.mask_ratio * n), 1), n - 1)
        target = smallest_k(random_order(batch_size, n, generator), k)
        return Masks(
            context=[(~target).nonzero()[:, 1].view(batch_size, n - k)],
            targets=[target.nonzero()[:, 1].view(batch_size, k)],
        )
