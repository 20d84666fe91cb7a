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
from jepakit.masking import MaskingError, check_grid, random_order

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
    """Add one block per round to every image with fewer than ``k`` patches covered.

    Returns the covered patches ([batch, N] bool) and the patches covered before
    each image's last round, so that the last block's new patches are
    ``covered & ~before``. In numpy: many small operations, where numpy's per-call
    overhead is a fraction of torch's; a block is the AND of a row band and a
    column band looked up in precomputed tables.
    """
    gh, gw = grid
    n = gh * gw
    cap = min(cfg.max_block_patches or n, n)
    lo = float(cfg.min_block_patches)
    log_lo, log_hi = math.log(cfg.aspect[0]), math.log(cfg.aspect[1])
    rows, cols = np.arange(n) // gw, np.arange(n) % gw
    # row_band[top, h]: patches in rows top .. top+h-1 (likewise col_band), as [N] masks
    starts = np.arange(gh)[:, None, None]
    sides = np.arange(gh + 1)[None, :, None]
    row_band = (rows >= starts) & (rows < starts + sides)
    starts = np.arange(gw)[:, None, None]
    sides = np.arange(gw + 1)[None, :, None]
    col_band = (cols >= starts) & (cols < starts + sides)
    dims = np.array([[gh], [gw]])
    masked = np.zeros((batch, n), dtype=bool)
    before = np.zeros((batch, n), dtype=bool)
    count = np.zeros(batch, dtype=np.int64)
    pending = np.arange(batch)  # images still short of k patches
    u = np.empty(0)
    for r in range(cfg.max_rounds):
        if r % ROUNDS_PER_DRAW == 0:  # drawn for the whole batch: the stream does not
            u = torch.rand(ROUNDS_PER_DRAW, 4, batch, generator=generator,  # depend on timing
                           dtype=torch.float64).numpy()
        u_area, u_aspect, u_top, u_left = u[r % ROUNDS_PER_DRAW][:, pending]
        missing = np.minimum(np.maximum(k - count[pending], 1), cap)
        area = lo + u_area * (missing - lo)
        ratio = np.exp(log_lo + u_aspect * (log_hi - log_lo))
        # heights and widths together: [2, m], then top and left corners likewise
        hw = np.rint(np.sqrt(area * np.stack([ratio, 1 / ratio])))
        hw = np.minimum(np.maximum(hw, 1), dims).astype(np.int64)
        room = dims - hw
        corner = np.minimum((np.stack([u_top, u_left]) * (room + 1)).astype(np.int64), room)
        (h, w), (top, left) = hw, corner
        sub = masked[pending]
        before[pending] = sub
        sub |= row_band[top, h] & col_band[left, w]
        masked[pending] = sub
        count[pending] = np.count_nonzero(sub, axis=1)
        pending = pending[count[pending] < k]
        if pending.size == 0:
            break
    return masked, before


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

    conformance = {"min_grid": (1, 2), "grid_ranks": (2,)}
    """Any 2-D grid of two patches or more; the target is a union of blocks, not one rectangle."""

    def __call__(self, batch_size: int, patch_grid: tuple[int, int],
                 generator: torch.Generator) -> Masks:
        cfg = self.config
        gh, gw = check_grid(patch_grid, "blockwise masking")
        n = gh * gw
        if n < 2:
            raise MaskingError(f"blockwise masking needs at least 2 patches, got a {gh}x{gw} grid")
        k = min(max(round(cfg.mask_ratio * n), 1), n - 1)
        masked, before = add_blocks((gh, gw), k, cfg, batch_size, generator)
        # earlier blocks first (rank 0), then the last block's new patches (1 ..) from a
        # random raster start, so an overshooting last block keeps a contiguous run
        start = torch.randint(0, n, (batch_size, 1), generator=generator).numpy()
        run = np.arange(n) - start
        run[run < 0] += n
        rank = np.where(before, 0, 1 + run)
        if np.count_nonzero(masked, axis=1).min() >= k:
            keys = np.where(masked, rank, n + 1).astype(np.int32)
        else:  # blocks fell short: random border patches next (2), then any (3)
            fill = np.where(border(masked, (gh, gw)), 2 << 32, 3 << 32)
            fill = fill + random_order(batch_size, n, generator).numpy()
            keys = np.where(masked, rank, fill)
        # the k smallest keys are distinct at the threshold (ties are only among
        # earlier blocks, all kept, or among uncovered patches, none kept)
        kth = np.partition(keys, k - 1, axis=1)[:, k - 1:k]
        target = keys <= kth
        return Masks(
            context=[torch.from_numpy(np.nonzero(~target)[1].reshape(batch_size, n - k))],
            targets=[torch.from_numpy(np.nonzero(target)[1].reshape(batch_size, k))],
        )
