"""V-JEPA's 3-D multi-block masking (Bardes et al. 2024, arXiv 2404.08471, section 3.2;
V-JEPA 2, Assran et al. 2025, arXiv 2506.09985).

A batch gets several mask *configurations*. For each, ``num_blocks`` boxes are drawn
per clip on the (frames, rows, columns) token grid: a spatial block of
``spatial_scale`` of the frame with aspect ratio (height / width) in ``aspect_ratio``,
spanning ``temporal_scale`` of the clip's frames (1.0, the default: the whole clip, so
the model cannot copy a masked patch from a neighbouring frame). The configuration's
target is the union of its blocks and its context the complement of that union, so
``Masks.context[c]`` pairs with ``Masks.targets[c]`` only (``pairing = "zip"``); the
predictor gives each configuration its own mask token. V-JEPA 2's default: 8 blocks of
spatial scale 0.15 ("short range") and 2 blocks of 0.7 ("long range").

As upstream, the box size is drawn once per batch and configuration (shared by its
blocks and clips), positions per clip and block, uniformly over every place a box fits
(every patch can be in a target and in a context). Here scale and log-aspect are drawn
independently, as in jepakit's corrected I-JEPA masker. A clip whose blocks leave fewer
than ``min_keep`` context tokens has its blocks redrawn (upstream redraws an empty
context), up to ``max_tries`` times before a :class:`jepakit.masking.MaskingError`.

Equal lengths: the union of a configuration's blocks covers a different number of
tokens in each clip, so the context and target of every clip are cut to the batch's
smallest count. ``lengths: subsample`` (default) drops a uniformly random subset, as
jepakit's corrected I-JEPA masker does for its context; ``lengths: truncate`` keeps the
first tokens in raster order, as the official code does, which drops the last frames'
and bottom rows' tokens first (with large blocks, some patches are then never in a
context: the conformance kit finds them). Drawing only from the generator given, vectorised over the batch and
blocks: a batch of 64 on an 8x16x16 grid takes a few milliseconds
(``benchmarks/masking_speed.py --grid 8 16 16 --batch-size 64``).

Length buckets (``length_buckets: K``, for ``train.compile``): a compiled step builds a
graph per token count, and these counts change every batch. With buckets each
configuration's context and target lengths are cut further, *down* to one of K levels
(:func:`jepakit.buckets.best_levels` over the batch minima of 200 batches drawn from seed 0,
per grid and batch size), so a run meets at most K x K shapes per configuration. Clips
below the lowest level are redrawn as for ``min_keep``; a batch that still cannot reach it
keeps its own (unbucketed) length rather than fail.

An image grid (rows, columns) is masked as a one-frame clip.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
import torch
from attrs import validators as v

from jepakit.buckets import best_levels, snap
from jepakit.contracts import Masks
from jepakit.masking import (
    MaskingError,
    block_shape,
    box_masks,
    first_k,
    format_grid,
    grid_shape,
    uniform,
)


def _fraction(name: str, value: tuple[float, float]) -> None:
    lo, hi = value
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"{name}: expected 0 < low <= high <= 1, got ({lo}, {hi})")


@attrs.define
class MaskConfiguration:
    """One mask configuration: ``num_blocks`` boxes whose union is the target."""

    num_blocks: int = attrs.field(default=8, validator=v.gt(0))
    """Blocks per clip; their union is the target."""
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    """Fraction of a frame each block covers (low, high)."""
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    """Fraction of the clip's frames each block spans (low, high); 1.0: all of them."""
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    """Height / width of the blocks (low, high), drawn log-uniformly."""

    def __attrs_post_init__(self) -> None:
        _fraction("spatial_scale", self.spatial_scale)
        _fraction("temporal_scale", self.temporal_scale)
        lo, hi = self.aspect_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"aspect_ratio: expected 0 < low <= high, got ({lo}, {hi})")


def default_configurations() -> list[MaskConfiguration]:
    """V-JEPA 2's pretraining masks: 8 blocks of 0.15 and 2 blocks of 0.7, whole clip."""
    return [MaskConfiguration(num_blocks=8, spatial_scale=(0.15, 0.15)),
            MaskConfiguration(num_blocks=2, spatial_scale=(0.7, 0.7))]


@attrs.define
class VJEPAMultiBlockConfig:
    """V-JEPA 2 defaults: two configurations (8 x 0.15 and 2 x 0.7), aspect 0.75-1.5."""

    configurations: list[MaskConfiguration] = attrs.field(factory=default_configurations)
    """The mask configurations drawn for every batch, each with its own mask token."""
    min_keep: int = attrs.field(default=1, validator=v.gt(0))
    """Fewest context tokens a clip may keep; its blocks are redrawn below it."""
    max_tries: int = attrs.field(default=20, validator=v.gt(0))
    """Redraws of a clip's blocks before giving up with an error."""
    lengths: Literal["subsample", "truncate"] = "subsample"
    """How masks are cut to the batch's smallest count: a random subset (default) or
    the first tokens in raster order (the official code)."""
    length_buckets: int = attrs.field(default=0, validator=v.ge(0))
    """0: every batch keeps its own lengths. K > 0: each configuration's context and
    target lengths are cut down to one of K levels, so a compiled step (``train.compile``)
    builds a few graphs for the whole run."""

    def __attrs_post_init__(self) -> None:
        if not self.configurations:
            raise ValueError("configurations: needs at least one mask configuration")


def box_size(grid: tuple[int, int, int], cfg: MaskConfiguration,
             generator: torch.Generator) -> tuple[int, int, int]:
    """(frames, height, width) of one configuration's blocks for one batch."""
    frames = min(max(round(uniform(*cfg.temporal_scale, generator) * grid[0]), 1), grid[0])
    height, width = block_shape(grid[1:], cfg.spatial_scale, cfg.aspect_ratio, generator)
    return frames, height, width


def _positions(count: int, blocks: int, grid: tuple[int, int, int],
               size: tuple[int, int, int], generator: torch.Generator) -> list[torch.Tensor]:
    """First index along each axis, [count, blocks] each, uniform where the box fits."""
    return [torch.randint(0, g - s + 1, (count, blocks), generator=generator)
            for g, s in zip(grid, size, strict=True)]


def _union(grid: tuple[int, int, int], starts: list[torch.Tensor],
           size: tuple[int, int, int]) -> torch.Tensor:
    """Boolean [B, N]: the patches in any of each clip's blocks (as :func:`box_masks`
    followed by ``any`` over the blocks, but as one batched matmul of the blocks'
    frame spans [B, blocks, T] with their rectangles [B, blocks, H*W])."""
    t, h, w = grid
    frames = box_masks((t,), starts[:1], size[:1]).float()
    rects = box_masks((h, w), starts[1:], size[1:]).float()
    covered = torch.bmm(frames.transpose(1, 2), rects) > 0
    return covered.flatten(1)


def configuration_masks(cfg: MaskConfiguration, batch_size: int, grid: tuple[int, int, int],
                        min_keep: int, max_tries: int, generator: torch.Generator,
                        index: int = 0, floors: tuple[int, int] | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (context, target) [B, N] of one configuration, every clip's context
    holding at least ``min_keep`` patches. ``floors`` (the lowest bucket levels): clips
    whose context or target is shorter are redrawn too; when that fails ``max_tries``
    times the batch is drawn again without them (from the generator's new state)."""
    size = box_size(grid, cfg, generator)
    target = _union(grid, _positions(batch_size, cfg.num_blocks, grid, size, generator), size)
    keep_context, keep_target = (max(min_keep, floors[0]), floors[1]) if floors else (min_keep, 0)
    for _ in range(max_tries):
        short = ((~target).sum(dim=1) < keep_context) | (target.sum(dim=1) < keep_target)
        if not bool(short.any()):
            return ~target, target
        redo = int(short.sum())
        target[short] = _union(grid, _positions(redo, cfg.num_blocks, grid, size, generator), size)
    if floors is not None:
        return configuration_masks(cfg, batch_size, grid, min_keep, max_tries, generator, index)
    if bool(((~target).sum(dim=1) < min_keep).any()):
        raise MaskingError(
            f"vjepa_multiblock: configuration {index} ({cfg.num_blocks} blocks of "
            f"{size[0]}x{size[1]}x{size[2]}) left fewer than min_keep={min_keep} context tokens "
            f"on a {format_grid(grid)} grid after {max_tries} tries; lower its spatial_scale "
            "or num_blocks")
    return ~target, target


def subsample(mask: torch.Tensor, k: int, keys: np.ndarray) -> torch.Tensor:
    """Indices [B, k] in raster order: of each row's members of ``mask`` [B, N], the
    ``k`` with the smallest ``keys`` (float64 uniform draws in [0, 1), so a uniformly
    random subset); rows need at least ``k`` members."""
    ranked = np.where(mask.numpy(), keys, 2.0)
    chosen = np.argpartition(ranked, k - 1, axis=1)[:, :k]
    return torch.from_numpy(np.sort(chosen, axis=1))


def equal_lengths(masks: list[torch.Tensor], how: str, generator: torch.Generator,
                  levels: list[tuple[int, ...]] | None = None) -> list[torch.Tensor]:
    """Each boolean [B, N] mask as indices [B, k], k its smallest row count (moved down
    to a level of ``levels[i]`` when given): a uniformly random subset of each row
    (``subsample``; one key per patch drawn for all the masks, which are disjoint, so
    their subsets are independent) or its first ``k`` in raster order (``truncate``).
    No random number is drawn when every row has ``k`` members."""
    out: list[torch.Tensor] = []
    keys: np.ndarray | None = None
    for i, mask in enumerate(masks):
        counts = mask.sum(dim=1)
        k = int(counts.min())
        if levels is not None:
            k = snap(k, levels[i], "down")
        if bool((counts == k).all()):
            out.append(mask.nonzero()[:, 1].view(mask.shape[0], k))
        elif how == "truncate":
            out.append(first_k(mask, k))
        else:
            if keys is None:
                keys = torch.rand(mask.shape, generator=generator, dtype=torch.float64).numpy()
            out.append(subsample(mask, k, keys))
    return out


SIM_BATCHES = 200
"""Batches drawn (from seed 0) to choose the length levels of one grid and batch size."""


@attrs.frozen
class VideoLengthLevels:
    """The lengths a bucketed masker cuts to, per configuration (ascending each)."""

    context: tuple[tuple[int, ...], ...]
    targets: tuple[tuple[int, ...], ...]

    @property
    def count(self) -> int:
        """(context, target) length pairs over the configurations: predictor graphs."""
        return sum(len(c) * len(t) for c, t in zip(self.context, self.targets))


def choose_levels(config: VJEPAMultiBlockConfig, grid: tuple[int, int, int],
                  batch_size: int) -> VideoLengthLevels:
    """``config.length_buckets`` levels per configuration and mask: those that move the
    batch minima of :data:`SIM_BATCHES` unbucketed batches down the least."""
    generator = torch.Generator().manual_seed(0)
    context, targets = [], []
    for c, conf in enumerate(config.configurations):
        minima = []
        for _ in range(SIM_BATCHES):
            ctx, tgt = configuration_masks(conf, batch_size, grid, config.min_keep,
                                           config.max_tries, generator, c)
            minima.append((int(ctx.sum(dim=1).min()), int(tgt.sum(dim=1).min())))
        context.append(best_levels((m[0] for m in minima), config.length_buckets, "down"))
        targets.append(best_levels((m[1] for m in minima), config.length_buckets, "down"))
    return VideoLengthLevels(tuple(context), tuple(targets))


class VJEPAMultiBlockMasker:
    """``masker(batch_size, patch_grid, generator) -> Masks``: one (context, target)
    pair per configuration, ``context[c]`` paired with ``targets[c]``."""

    pairing = "zip"
    """``context[c]`` pairs with ``targets[c]`` only (jepakit/testing.py checks them so)."""

    def __init__(self, config: VJEPAMultiBlockConfig) -> None:
        self.config = config
        self._levels: dict[tuple[tuple[int, int, int], int], VideoLengthLevels] = {}

    def length_levels(self, patch_grid: tuple[int, ...], batch_size: int
                      ) -> VideoLengthLevels | None:
        """The lengths this masker cuts to on ``patch_grid`` at ``batch_size`` with
        ``length_buckets`` on (None when off); chosen once per grid and batch size."""
        if not self.config.length_buckets:
            return None
        grid = _clip_grid(patch_grid)
        key = (grid, batch_size)
        if key not in self._levels:
            self._levels[key] = choose_levels(self.config, grid, batch_size)
        return self._levels[key]

    @property
    def conformance(self) -> dict[str, Any]:
        """What :func:`jepakit.testing.check_masker` may expect: video and image grids
        (an image is a one-frame clip) of at least 4x4 patches a frame (on smaller
        frames V-JEPA 2's two 0.7 blocks often cover the whole frame). With ``lengths:
        truncate`` the tokens last in raster order are dropped first, so some patches
        (late frames, bottom rows) may never be in a context or a target."""
        found: dict[str, Any] = {"grid_ranks": (2, 3), "min_grid": (1, 4, 4)}
        if self.config.lengths == "truncate":
            found.update(context_reachable=False, target_reachable=False)
        return found

    def __call__(self, batch_size: int, patch_grid: tuple[int, ...],
                 generator: torch.Generator) -> Masks:
        grid = _clip_grid(patch_grid)
        cfg = self.config
        levels = self.length_levels(grid, batch_size)
        context, targets = [], []
        for c, conf in enumerate(cfg.configurations):
            cut = None if levels is None else [levels.context[c], levels.targets[c]]
            floors = None if cut is None else (cut[0][0], cut[1][0])
            ctx, tgt = configuration_masks(conf, batch_size, grid, cfg.min_keep, cfg.max_tries,
                                           generator, c, floors)
            ctx_idx, tgt_idx = equal_lengths([ctx, tgt], cfg.lengths, generator, cut)
            context.append(ctx_idx)
            targets.append(tgt_idx)
        return Masks(context=context, targets=targets)


def _clip_grid(patch_grid: tuple[int, ...]) -> tuple[int, int, int]:
    """(frames, rows, columns); an image grid is a one-frame clip."""
    shape = grid_shape(patch_grid)
    if len(shape) not in (2, 3):
        raise MaskingError(f"vjepa_multiblock needs a 2-D or 3-D patch grid, got "
                           f"{format_grid(shape)}")
    return (1, shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[1], shape[2])
