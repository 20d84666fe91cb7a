"""Building blocks for maskers: rectangles on a patch grid, equal-length index sets.

Every function here is vectorised over the batch and draws only from the
generator it is given, so a masker built from them is reproducible from its
generator state and fast enough for the collate function (docs/masking.md).
Masks are boolean tensors ``[..., N]`` over the ``N`` patches of the grid in
raster order (``N = h * w`` for an image grid, ``t * h * w`` for a video grid
(frames, rows, columns), frames major); :func:`to_indices` turns them into the
``[B, K]`` index tensors of :class:`jepakit.Masks`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from jepakit.errors import JepakitError


class MaskingError(JepakitError, RuntimeError):
    """A masker cannot draw masks with its parameters on this grid (e.g. blocks too
    large to leave a context). A user mistake, so the CLI reports it in one line."""


def uniform(lo: float, hi: float, generator: torch.Generator) -> float:
    """One number uniform in ``[lo, hi)``."""
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def fit_shape(grid: tuple[int, int], area: float, aspect: float) -> tuple[int, int]:
    """Integer (height, width) of a block of about ``area`` patches and ``aspect``
    (height / width) that fits the grid.

    Sides are rounded to the nearest patch; when one side would not fit the grid
    it is clipped and the other grows to keep the area (on narrow grids the
    scale matters more than the aspect ratio).
    """
    gh, gw = grid
    hf, wf = math.sqrt(area * aspect), math.sqrt(area / aspect)
    if hf > gh:
        h, w = gh, round(area / gh)
    elif wf > gw:
        h, w = round(area / gw), gw
    else:
        h, w = round(hf), round(wf)
    h, w = min(max(h, 1), gh), min(max(w, 1), gw)
    return h, w


def block_shape(
    grid: tuple[int, int],
    scale: tuple[float, float],
    aspect: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int]:
    """Block (height, width) in patches, with the scale (fraction of the grid) and
    the log aspect ratio drawn independently and uniformly (the official I-JEPA
    collator uses one number for both, Assran et al. 2023 upstream issue #60)."""
    gh, gw = grid
    area = uniform(*scale, generator) * gh * gw
    log_ar = uniform(math.log(aspect[0]), math.log(aspect[1]), generator)
    return fit_shape(grid, area, math.exp(log_ar))


def _span(size: int, start: torch.Tensor, length: int | torch.Tensor) -> torch.Tensor:
    """Boolean [*start.shape, size]: positions ``start <= i < start + length``."""
    i = torch.arange(size)
    start = start.unsqueeze(-1)
    if isinstance(length, torch.Tensor):
        length = length.unsqueeze(-1)
    return (i >= start) & (i < start + length)


def rect_masks(
    grid: tuple[int, int], top: torch.Tensor, left: torch.Tensor, height: int | torch.Tensor,
    width: int | torch.Tensor,
) -> torch.Tensor:
    """Boolean masks [*top.shape, N] of rectangles with the given corners and sides
    (sides may be ints or tensors shaped like ``top``)."""
    gh, gw = grid
    rows = _span(gh, top, height)
    cols = _span(gw, left, width)
    return (rows.unsqueeze(-1) & cols.unsqueeze(-2)).flatten(-2)


def rect_indices(grid: tuple[int, int], top: torch.Tensor, left: torch.Tensor, height: int,
                 width: int) -> torch.Tensor:
    """Patch indices [*top.shape, height * width] of equal rectangles, in raster order."""
    rows = top.unsqueeze(-1) + torch.arange(height)
    cols = left.unsqueeze(-1) + torch.arange(width)
    return (rows.unsqueeze(-1) * grid[1] + cols.unsqueeze(-2)).flatten(-2)


def block_positions(
    count: tuple[int, ...], grid: tuple[int, int], shape: tuple[int, int], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (top, left), each LongTensor ``count``, uniform over every
    position where a ``shape`` block fits (so every patch can be covered)."""
    (gh, gw), (h, w) = grid, shape
    top = torch.randint(0, gh - h + 1, count, generator=generator)
    left = torch.randint(0, gw - w + 1, count, generator=generator)
    return top, left


def block_masks(
    count: tuple[int, ...], grid: tuple[int, int], shape: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """Boolean masks [*count, N] of ``shape`` blocks at uniform positions over the
    whole grid (every patch can be covered)."""
    top, left = block_positions(count, grid, shape, generator)
    return rect_masks(grid, top, left, *shape)


_KEY_BITS = 21


def random_order(batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Distinct integer keys [batch, n] whose order in each row is a uniformly random
    permutation: 21 random bits per key (three keys per 64-bit draw, which is
    what makes this cheap), exact ties broken by a random rotation of the row."""
    words = torch.empty(batch, -(-n // 3), dtype=torch.int64).random_(generator=generator)
    rotation = torch.randint(0, max(n, 1), (batch, 1), generator=generator).numpy()
    w = words.numpy()
    low = (1 << _KEY_BITS) - 1
    chunks = np.stack([(w >> (_KEY_BITS * i)) & low for i in range(3)], axis=-1)
    tie = np.arange(n) + rotation
    tie[tie >= n] -= n
    keys = chunks.reshape(batch, -1)[:, :n] * n + tie
    dtype = np.int32 if n < (1 << (31 - _KEY_BITS)) else np.int64
    return torch.from_numpy(np.ascontiguousarray(keys, dtype=dtype))


def smallest_k(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean [B, N]: the ``k`` smallest of each row of distinct ``keys`` (ties
    beyond ``k``, e.g. of a fill value, resolved in raster order)."""
    b, n = keys.shape
    if k <= 0:
        return torch.zeros(b, n, dtype=torch.bool)
    if k >= n:
        return torch.ones(b, n, dtype=torch.bool)
    # numpy's introselect partition is several times faster than torch.kthvalue / topk on CPU
    kth = np.partition(keys.numpy(), k - 1, axis=1)[:, k - 1]
    keep = keys <= torch.from_numpy(kth).unsqueeze(1)
    return keep & (keep.cumsum(dim=1) <= k)


def sample_equal(mask: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Indices [B, k] of ``k`` members of each row of ``mask`` [B, N], chosen
    uniformly at random (no raster-order bias) and returned in raster order.

    Rows with fewer than ``k`` members are padded with non-members: callers pass
    ``k <= mask.sum(1).min()``.
    """
    b, n = mask.shape
    keys = random_order(b, n, generator)
    keys.masked_fill_(~mask, torch.iinfo(keys.dtype).max)
    return smallest_k(keys, k).nonzero()[:, 1].view(b, k)


def equalise(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices [B, k] with ``k`` the smallest row count of ``mask`` [B, N]: rows
    with more members are subsampled uniformly at random (not truncated in
    raster order); when all counts are equal no random number is drawn."""
    counts = mask.sum(dim=1)
    k = int(counts.min()) if counts.numel() else 0
    if counts.numel() and bool((counts == k).all()):
        return mask.nonzero()[:, 1].view(mask.shape[0], k)
    return sample_equal(mask, k, generator)


def first_k(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] of the first ``k`` members of each row of ``mask`` in raster
    order; every row must have at least ``k`` members."""
    keep = mask & (mask.cumsum(dim=1) <= k)
    return keep.nonzero()[:, 1].view(mask.shape[0], k)


def to_indices(mask: torch.Tensor) -> torch.Tensor:
    """[B, N] boolean masks with equal counts per row -> LongTensor [B, K] in raster order."""
    counts = mask.sum(dim=1)
    k = int(counts[0]) if counts.numel() else 0
    if bool((counts != k).any()):
        raise ValueError(f"rows have unequal counts {sorted(set(counts.tolist()))}")
    return mask.nonzero()[:, 1].view(mask.shape[0], k)


def to_bool(idx: torch.Tensor, n: int) -> torch.Tensor:
    """LongTensor [B, ...] of patch indices -> boolean masks [B, N] (the union over
    all but the first dimension)."""
    mask = torch.zeros(idx.shape[0], n, dtype=torch.bool)
    mask.scatter_(1, idx.long().reshape(idx.shape[0], -1), True)
    return mask


def union(masks: list[torch.Tensor], n: int) -> torch.Tensor:
    """Boolean [B, N]: the patches in any of the index tensors ``masks``."""
    out = torch.zeros(masks[0].shape[0] if masks else 0, n, dtype=torch.bool)
    for idx in masks:
        out |= to_bool(idx, n)
    return out


def grid_shape(grid: Sequence[int]) -> tuple[int, ...]:
    """``grid`` as a tuple of positive ints of any rank (2: rows, columns; 3: frames,
    rows, columns), or a ValueError."""
    shape = tuple(int(s) for s in grid)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"patch grid must be non-empty and positive, got {tuple(grid)}")
    return shape


def grid_size(grid: Sequence[int]) -> int:
    """Number of patches ``N`` of a grid of any rank."""
    return math.prod(int(s) for s in grid)


def format_grid(grid: Sequence[int]) -> str:
    """``"14x14"`` or ``"8x14x14"``."""
    return "x".join(str(int(s)) for s in grid)


def check_grid(grid: Sequence[int], who: str = "this masker") -> tuple[int, int]:
    """``grid`` as two positive ints; a :class:`MaskingError` naming ``who`` when it is
    not a 2-D (rows, columns) grid, a ValueError when a side is not positive."""
    if len(grid) != 2:
        raise MaskingError(
            f"{who} needs a 2-D patch grid (rows, columns), got the {len(grid)}-D grid "
            f"{format_grid(grid)}; for video (frames, rows, columns) use a masker that supports "
            "it, e.g. vjepa_multiblock or random")
    gh, gw = grid_shape(grid)
    return gh, gw


def grid_ranks(masker: Any) -> tuple[int, ...]:
    """The grid ranks a masker supports: ``conformance["grid_ranks"]`` when it declares
    them, else ``(2,)`` (every masker written before video grids existed)."""
    declared = getattr(masker, "conformance", None)
    ranks = declared.get("grid_ranks") if isinstance(declared, Mapping) else None
    return tuple(int(r) for r in ranks) if ranks else (2,)


def require_rank(masker: Any, grid: Sequence[int], name: str | None = None) -> None:
    """A :class:`MaskingError` when ``masker`` does not declare support for ``grid``'s
    rank: checked once before training, so a 2-D masker never silently reads a video
    grid as (frames, rows)."""
    ranks = grid_ranks(masker)
    if len(grid) not in ranks:
        who = f"masker '{name}'" if name else type(masker).__name__
        shown = " or ".join(f"{r}-D" for r in ranks)
        raise MaskingError(
            f"{who} works on {shown} patch grids, got the {len(grid)}-D grid "
            f"{format_grid(grid)} (the encoder's); pick a masker that supports it (e.g. vjepa_multiblock or "
            f"random for video; a masker that handles {len(grid)}-D grids declares "
            f"conformance={{'grid_ranks': {(*ranks, len(grid))}}})")


def box_masks(grid: Sequence[int], starts: Sequence[torch.Tensor],
              sides: Sequence[int | torch.Tensor]) -> torch.Tensor:
    """Boolean masks [*starts[0].shape, N] of axis-aligned boxes on a grid of any rank:
    ``starts[d]`` and ``sides[d]`` give each box's first index and extent along axis d
    (the rank-2 case equals :func:`rect_masks`)."""
    out: torch.Tensor | None = None
    for d, (size, start, side) in enumerate(zip(grid, starts, sides, strict=True)):
        span = _span(int(size), start, side)
        shaped = span.view(*span.shape[:-1], *([1] * d), int(size), *([1] * (len(grid) - d - 1)))
        out = shaped if out is None else out & shaped
    assert out is not None
    return out.flatten(-len(grid))
