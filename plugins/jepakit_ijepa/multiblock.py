"""Multi-block masking (I-JEPA, Assran et al., 2023, arXiv 2301.08243, section 3 and figure 4).

Per image: ``num_targets`` rectangular target blocks of scale ``target_scale``
and aspect ratio ``target_aspect``, and one large context block of scale
``context_scale`` from which the target patches are removed, so the context
gives no trivial answer. Block shapes are drawn once per batch (so every target
tensor is a full rectangle of equal length), positions once per image and block.

``mode: corrected`` (the default) fixes the official collator's biases
(docs/index.md, "I-JEPA: paper versus official code"; upstream issue #60 and PR #40): scale and log-aspect are
drawn independently, block positions cover the whole grid (every patch can be in
a target and in the context, and the context is not pinned to a corner), and
context lengths are equalised across the batch by dropping random context
patches, not the last ones in raster order.

``mode: official`` reproduces the official collator, quirks included, for
faithful reproductions: one random number for scale and (linear) aspect, block
areas floored and sides capped at grid - 1, positions drawn with an exclusive
upper bound (the last row and column are never in any block; on 14x14 and 16x16
grids with the paper's context scale the context is always the top-left
square), the context redrawn until it keeps more than ``min_keep`` patches
(dropping target constraints after every 20 failures, as upstream does), and
contexts truncated to the batch minimum in raster order. It draws everything
from the generator it is given (upstream draws positions from torch's global
generator), so only the distribution, not the exact stream, matches upstream.

Both modes draw only from the generator passed in, so masks are reproducible.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v

from jepakit.contracts import Masks
from jepakit.masking import (
    MaskingError,
    block_masks,
    block_positions,
    block_shape,
    check_grid,
    first_k,
    rect_indices,
    rect_masks,
    sample_equal,
    to_bool,
)

from .length_levels import LengthLevels, length_levels

__all__ = [
    "MultiBlockConfig",
    "MultiBlockMasker",
    "block_masks",
    "block_shape",
    "official_block_masks",
    "official_positions",
    "official_shape",
    "sample_equal",
]

OFFICIAL_TIMEOUT = 20
"""Failed context draws per image before the official collator drops a target constraint."""


def _interval(lo: float, hi: float) -> None:
    if not 0 < lo <= hi:
        raise ValueError(f"expected 0 < low <= high, got ({lo}, {hi})")


@attrs.define
class MultiBlockConfig:
    """Paper defaults: 4 targets of scale (0.15, 0.2), aspect (0.75, 1.5); context (0.85, 1.0)."""

    num_targets: int = attrs.field(default=4, validator=v.gt(0))
    target_scale: tuple[float, float] = (0.15, 0.2)
    """Fraction of the grid each target block covers (low, high)."""
    target_aspect: tuple[float, float] = (0.75, 1.5)
    """Height / width of target blocks (low, high)."""
    context_scale: tuple[float, float] = (0.85, 1.0)
    """Fraction of the grid the context block covers before targets are removed."""
    context_aspect: tuple[float, float] = (1.0, 1.0)
    allow_overlap: bool = False
    """Keep target patches in the context (the paper removes them)."""
    min_keep: int = attrs.field(default=4, validator=v.gt(0))
    """Fewest context patches an image may have; blocks are redrawn below it
    (official mode: the context must keep more than ``min_keep``, as upstream)."""
    max_tries: int = attrs.field(default=20, validator=v.gt(0))
    """Corrected mode: redraws of an image's blocks before giving up with an error."""
    mode: Literal["corrected", "official"] = "corrected"
    """``corrected`` (default) or ``official`` (the upstream collator's behaviour, quirks included)."""
    length_buckets: int = attrs.field(default=0, validator=v.ge(0))
    """Draw context lengths and target block areas from at most this many values each
    (chosen per grid and batch size; :mod:`jepakit_ijepa.length_levels`), so a compiled
    step compiles once per value instead of once per drawn size. 0: off (every size)."""

    def __attrs_post_init__(self) -> None:
        for name in ("target_scale", "target_aspect", "context_scale", "context_aspect"):
            lo, hi = getattr(self, name)
            try:
                _interval(lo, hi)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if self.target_scale[1] > 1 or self.context_scale[1] > 1:
            raise ValueError("scales are fractions of the image: at most 1.0")
        if self.length_buckets and self.mode == "official":
            raise ValueError("length_buckets: needs mode 'corrected' (official mode "
                             "reproduces the upstream collator's lengths)")


# -- corrected ---------------------------------------------------------------------------------


def _corrected(cfg: MultiBlockConfig, batch_size: int, grid: tuple[int, int],
               generator: torch.Generator, levels: LengthLevels | None = None) -> Masks:
    n = grid[0] * grid[1]
    min_keep = min(cfg.min_keep, n)
    t_shape = block_shape(grid, cfg.target_scale, cfg.target_aspect, generator)
    if levels is not None:
        t_shape = levels.target_shape(t_shape)
    c_shape = block_shape(grid, cfg.context_scale, cfg.context_aspect, generator)
    t_top, t_left = block_positions((batch_size, cfg.num_targets), grid, t_shape, generator)
    context = block_masks((batch_size,), grid, c_shape, generator)
    # with buckets, images below the first context level are redrawn too (a soft floor)
    floor = max(min_keep, min(levels.floor, n)) if levels is not None else min_keep
    if not cfg.allow_overlap:
        for _ in range(cfg.max_tries):
            covered = to_bool(rect_indices(grid, t_top, t_left, *t_shape), n)
            keep = context & ~covered
            short = keep.sum(dim=1) < floor
            if not short.any():
                break
            redo = int(short.sum())
            t_top[short], t_left[short] = block_positions((redo, cfg.num_targets), grid, t_shape,
                                                          generator)
            context[short] = block_masks((redo,), grid, c_shape, generator)
        else:
            if floor > min_keep:  # the floor is soft: min_keep is the hard limit
                keep = context & ~to_bool(rect_indices(grid, t_top, t_left, *t_shape), n)
            if floor == min_keep or bool((keep.sum(dim=1) < min_keep).any()):
                raise MaskingError(
                    f"multiblock: could not leave {min_keep} context patches on a {grid} grid "
                    f"after {cfg.max_tries} tries; lower the target scale or num_targets"
                )
        context = keep
    k = int(context.sum(dim=1).min())
    if levels is not None:
        k = levels.context_length(k)
    context_idx = sample_equal(context, k, generator)
    target_idx = rect_indices(grid, t_top, t_left, *t_shape)
    return Masks(context=[context_idx], targets=list(target_idx.unbind(dim=1)))


# -- official ----------------------------------------------------------------------------------


def official_shape(
    grid: tuple[int, int],
    scale: tuple[float, float],
    aspect: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int]:
    """The upstream block size: one uniform number sets both the scale and the
    (linearly interpolated) aspect ratio; the area is floored to whole patches,
    sides are rounded and capped at grid - 1."""
    gh, gw = grid
    r = float(torch.rand(1, generator=generator))
    area = int(gh * gw * (scale[0] + r * (scale[1] - scale[0])))
    ar = aspect[0] + r * (aspect[1] - aspect[0])
    h, w = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
    return min(h, gh - 1), min(w, gw - 1)


def official_positions(
    count: tuple[int, ...], grid: tuple[int, int], shape: tuple[int, int], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners as upstream: uniform in ``[0, grid - side)``, an exclusive
    upper bound, so no block ever reaches the last row or column."""
    (gh, gw), (h, w) = grid, shape
    top = torch.randint(0, gh - h, count, generator=generator)
    left = torch.randint(0, gw - w, count, generator=generator)
    return top, left


def official_block_masks(
    count: tuple[int, ...], grid: tuple[int, int], shape: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """Boolean masks [*count, N] at :func:`official_positions`."""
    return rect_masks(grid, *official_positions(count, grid, shape, generator), *shape)


def _official_context(cfg: MultiBlockConfig, targets: torch.Tensor, grid: tuple[int, int],
                      shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Per image, redraw the context block until it keeps more than ``min_keep``
    patches outside the targets; after every ``OFFICIAL_TIMEOUT`` failures the last
    remaining target stops constraining it (upstream's fallback)."""
    b, t, n = targets.shape
    context = torch.zeros(b, n, dtype=torch.bool)
    pending = torch.arange(b)
    fails = torch.zeros(b, dtype=torch.long)
    dropped = torch.zeros(b, dtype=torch.long)
    while pending.numel():
        keep = official_block_masks((pending.numel(),), grid, shape, generator)
        if not cfg.allow_overlap:
            active = torch.arange(t) < (t - dropped[pending]).unsqueeze(1)
            keep &= ~(targets[pending] & active.unsqueeze(-1)).any(dim=1)
        ok = keep.sum(dim=1) > cfg.min_keep
        context[pending[ok]] = keep[ok]
        pending = pending[~ok]
        fails[pending] += 1
        timed_out = pending[fails[pending] >= OFFICIAL_TIMEOUT]
        dropped[timed_out] += 1
        fails[timed_out] = 0
    return context


def _official(cfg: MultiBlockConfig, batch_size: int, grid: tuple[int, int],
              generator: torch.Generator) -> Masks:
    gh, gw = grid
    if gh < 2 or gw < 2:
        raise MaskingError(f"multiblock official mode needs a grid of at least 2x2, got {grid}")
    t_shape = official_shape(grid, cfg.target_scale, cfg.target_aspect, generator)
    c_shape = official_shape(grid, cfg.context_scale, cfg.context_aspect, generator)
    for what, (h, w) in (("target", t_shape), ("context", c_shape)):
        if h * w <= cfg.min_keep:
            raise MaskingError(
                f"multiblock official mode: a {h}x{w} {what} block on a {grid} grid cannot "
                f"keep more than min_keep={cfg.min_keep} patches (upstream would loop forever)"
            )
    t_top, t_left = official_positions((batch_size, cfg.num_targets), grid, t_shape, generator)
    targets = rect_masks(grid, t_top, t_left, *t_shape)
    context = _official_context(cfg, targets, grid, c_shape, generator)
    k = int(context.sum(dim=1).min())
    target_idx = rect_indices(grid, t_top, t_left, *t_shape)
    return Masks(context=[first_k(context, k)], targets=list(target_idx.unbind(dim=1)))


# -- the component -----------------------------------------------------------------------------


class MultiBlockMasker:
    """``masker(batch_size, patch_grid, generator) -> Masks``: one context, ``num_targets`` targets."""

    def __init__(self, config: MultiBlockConfig) -> None:
        self.config = config
        self._levels: dict[tuple[tuple[int, int], int], LengthLevels] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}  # levels are recomputed (deterministically) on demand

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])  # type: ignore[misc]

    def length_levels(self, patch_grid: tuple[int, int], batch_size: int) -> LengthLevels | None:
        """The context lengths and target areas this masker draws on ``patch_grid`` at
        ``batch_size`` with ``length_buckets`` on (None when off); measured once."""
        cfg = self.config
        if not cfg.length_buckets:
            return None
        grid = check_grid(patch_grid, "multiblock")
        key = (grid, batch_size)
        if key not in self._levels:
            def draw(generator: torch.Generator, levels: LengthLevels) -> int:
                return int(_corrected(cfg, batch_size, grid, generator, levels).context[0].shape[1])

            self._levels[key] = length_levels(cfg.length_buckets, grid, batch_size,
                                              cfg.target_scale, cfg.target_aspect, draw)
        return self._levels[key]

    @property
    def conformance(self) -> dict[str, Any]:
        """What :func:`jepakit.testing.check_masker` may expect (beyond what it reads
        from the config): official mode does not reach every patch and caps block
        sides at grid - 1, so its blocks can undershoot the scale on small grids. Both
        modes draw 2-D (rows, columns) grids only: a video grid is a MaskingError."""
        if self.config.mode == "official":
            return {"context_reachable": False, "target_reachable": False,
                    "target_scale": None, "context_scale": None, "min_grid": (8, 8), "grid_ranks": (2,)}
        return {"min_grid": (4, 4), "grid_ranks": (2,)}

    def __call__(
        self, batch_size: int, patch_grid: tuple[int, int], generator: torch.Generator
    ) -> Masks:
        grid = check_grid(patch_grid, "multiblock")
        if self.config.mode == "official":
            return _official(self.config, batch_size, grid, generator)
        return _corrected(self.config, batch_size, grid, generator,
                          self.length_levels(grid, batch_size))
