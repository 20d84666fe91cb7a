"""Blockwise masking of BEiT (Bao et al. 2021, arXiv 2106.08254, algorithm 1),
as a JEPA masker: the masked blocks are the target, the rest is the context.

Blocks of at least ``min_block_patches`` patches, with a log-uniform aspect ratio
in ``aspect``, are added at random positions until ``mask_ratio`` of the patches
are masked; each block's area is drawn up to the number of patches still
missing, as in BEiT. BEiT's own loop can stop short of the ratio; here every image
gets exactly ``round(mask_ratio * N)`` target patches (equal lengths across the
batch): when the last block overshoots, a contiguous run of its new patches (in
raster order from a random start) is kept, and should the blocks not reach the
ratio within ``max_rounds`` the mask grows by random patches along its border.
Vectorised over the batch: one round adds one block to every image that still
needs patches.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch
from attrs import validators as v

from jepakit.contracts import Masks
from jepakit.masking import MaskingError, check_grid, random_order, smallest_k

from ._checks import interval, ratio


@attrs.define
class BlockwiseConfig:
    """BEiT defaults: 40% of the patches in blocks of 16 patches or more, aspect 0.3 to 1/0.3."""

    mask_ratio: float = 0.4
    """Fraction of the patches in the target (BEiT masks 75 of 196, about 0.38)."""
    min_block_patches: int = attrs.field(default=16, validator=v.gt(0))
    """Smallest block area drawn, in patches (BEiT: 16)."""
    max_block_patches: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Largest block area drawn (BEiT: no limit beyond the patches still missing)."""
    aspect: tuple[float, float] = (0.3, 1 / 0.3)
    """Height / width of the blocks, drawn log-uniformly (BEiT: 0.3 to 1/0.3)."""
    max_rounds: int = attrs.field(default=8, validator=v.gt(0))
    """Blocks per image at most (about 99% of images need no more at the defaults)
    before the mask grows along its border to the ratio."""

    def __attrs_post_init__(self) -> None:
        ratio("mask_ratio", self.mask_ratio)
        interval("aspect", self.aspect)


ROUNDS_PER_DRAW = 8
"""Rounds whose random numbers are drawn at once (fewer generator calls)."""


def add_blocks(grid: tuple[int, int], k: int, cfg: BlockwiseConfig, batch: int,
               generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blocks added round by round: the covered patches ([batch, N] bool) and, per
    patch, the number of rounds that ended with it uncovered (so earlier blocks
    have smaller numbers, and uncovered patches the largest in their image). Blocks are added to every image with fewer than
    ``k`` patches covered. In numpy: many small operations, where numpy's per-call
    overhead is a fraction of torch's."""
    gh, gw = grid
    n = gh * gw
    cap = min(cfg.max_block_patches or n, n)
    lo = float(cfg.min_block_patches)
    log_lo, log_hi = math.log(cfg.aspect[0]), math.log(cfg.aspect[1])
    rows, cols = np.arange(gh), np.arange(gw)
    masked = np.zeros((batch, n), dtype=bool)
    added_in = np.zeros((batch, n), dtype=np.int16)  # rounds that ended with the patch free
    pending = np.arange(batch)  # images still short of k patches
    u = np.empty(0)
    for r in range(cfg.max_rounds):
        if r % ROUNDS_PER_DRAW == 0:  # drawn for the whole batch: the stream does not
            u = torch.rand(ROUNDS_PER_DRAW, 4, batch, generator=generator,  # depend on timing
                           dtype=torch.float64).numpy()
        u_area, u_aspect, u_top, u_left = u[r % ROUNDS_PER_DRAW][:, pending]
        sub = masked[pending]
        missing = np.clip(k - np.count_nonzero(sub, axis=1), 1, cap)
        area = lo + u_area * (missing - lo)
        aspect = np.exp(log_lo + u_aspect * (log_hi - log_lo))
        h = np.clip(np.rint(np.sqrt(area * aspect)), 1, gh).astype(np.int64)
        w = np.clip(np.rint(np.sqrt(area / aspect)), 1, gw).astype(np.int64)
        top = np.minimum((u_top * (gh - h + 1)).astype(np.int64), gh - h)[:, None]
        left = np.minimum((u_left * (gw - w + 1)).astype(np.int64), gw - w)[:, None]
        in_rows = (rows >= top) & (rows < top + h[:, None])
        in_cols = (cols >= left) & (cols < left + w[:, None])
        sub |= (in_rows[:, :, None] & in_cols[:, None, :]).reshape(-1, n)
        masked[pending] = sub
        added_in[pending] += ~sub
        pending = pending[np.count_nonzero(sub, axis=1) < k]
        if pending.size == 0:
            break
    return masked, added_in


def border(masked: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Uncovered patches next (4-neighbourhood) to a covered one: [batch, N] bool."""
    m = masked.reshape(-1, *grid)
    near = np.zeros_like(m)
    near[:, 1:] |= m[:, :-1]
    near[:, :-1] |= m[:, 1:]
    near[:, :, 1:] |= m[:, :, :-1]
    near[:, :, :-1] |= m[:, :, 1:]
    return near.reshape(masked.shape) & ~masked


class BlockwiseMasker:
    """Union of random blocks as the one target; the context is every other patch."""

    def __init__(self, config: BlockwiseConfig) -> None:
        self.config = config

    conformance = {"min_grid": (1, 2)}
    """Any grid of two patches or more; the target is a union of blocks, not one rectangle."""

    def __call__(self, batch_size: int, patch_grid: tuple[int, int],
                 generator: torch.Generator) -> Masks:
        cfg = self.config
        gh, gw = check_grid(patch_grid)
        n = gh * gw
        if n < 2:
            raise MaskingError(f"blockwise masking needs at least 2 patches, got a {gh}x{gw} grid")
        k = min(max(round(cfg.mask_ratio * n), 1), n - 1)
        masked, added_in = add_blocks((gh, gw), k, cfg, batch_size, generator)
        # earliest blocks first; the overshooting last block from a random raster start;
        # should the blocks fall short, random border patches, then any
        start = torch.randint(0, n, (batch_size, 1), generator=generator).numpy()
        run = np.arange(n) - start
        run[run < 0] += n
        fill = np.where(border(masked, (gh, gw)), 0, 1 << 31)
        fill = fill + random_order(batch_size, n, generator).numpy()
        keys = (added_in.astype(np.int64) << 33) + np.where(masked, run, fill)
        target = smallest_k(torch.from_numpy(keys), k)
        return Masks(
            context=[(~target).nonzero()[:, 1].view(batch_size, n - k)],
            targets=[target.nonzero()[:, 1].view(batch_size, k)],
        )
