"""Multi-block masking (I-JEPA, Assran et al., 2023, section 3 and figure 4).

Per image: ``num_targets`` rectangular target blocks of scale ``target_scale``
and aspect ratio ``target_aspect``, and one large context block of scale
``context_scale`` from which the target patches are removed, so the context
gives no trivial answer.

Unlike the official collator, scale and aspect are drawn independently, block
positions cover the whole grid, and context lengths are equalised across the
batch by dropping random context patches (not the last ones in raster order).
All draws come from the generator passed in, so masks are reproducible.
"""

from __future__ import annotations

import math

import attrs
import torch
from attrs import validators as v

from jepakit.contracts import Masks


def _interval(lo: float, hi: float) -> None:
    if not 0 < lo <= hi:
        raise ValueError(f"expected 0 < low <= high, got ({lo}, {hi})")


@attrs.define
class MultiBlockConfig:
    """Paper defaults: 4 targets of scale (0.15, 0.2), aspect (0.75, 1.5); context (0.85, 1.0)."""

    num_targets: int = attrs.field(default=4, validator=v.gt(0))
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    allow_overlap: bool = False
    """Keep target patches in the context (the paper removes them)."""
    min_keep: int = attrs.field(default=4, validator=v.gt(0))
    """Fewest context patches an image may have; blocks are redrawn below it."""
    max_tries: int = attrs.field(default=20, validator=v.gt(0))

    def __attrs_post_init__(self) -> None:
        for name in ("target_scale", "target_aspect", "context_scale", "context_aspect"):
            lo, hi = getattr(self, name)
            try:
                _interval(lo, hi)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if self.target_scale[1] > 1 or self.context_scale[1] > 1:
            raise ValueError("scales are fractions of the image: at most 1.0")


def _uniform(lo: float, hi: float, generator: torch.Generator) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def block_shape(
    grid: tuple[int, int],
    scale: tuple[float, float],
    aspect: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int]:
    """Block (height, width) in patches: scale and log-aspect drawn independently."""
    gh, gw = grid
    area = _uniform(*scale, generator) * gh * gw
    log_ar = _uniform(math.log(aspect[0]), math.log(aspect[1]), generator)
    h = round(math.sqrt(area * math.exp(log_ar)))
    w = round(math.sqrt(area / math.exp(log_ar)))
    return min(max(h, 1), gh), min(max(w, 1), gw)


def block_masks(
    count: tuple[int, ...], grid: tuple[int, int], shape: tuple[int, int], generator: torch.Generator
) -> torch.Tensor:
    """Boolean masks [*count, gh*gw] of ``shape`` blocks at uniform positions (all reachable)."""
    gh, gw = grid
    h, w = shape
    top = torch.randint(0, gh - h + 1, count, generator=generator).unsqueeze(-1)
    left = torch.randint(0, gw - w + 1, count, generator=generator).unsqueeze(-1)
    rows = torch.arange(gh).repeat_interleave(gw)
    cols = torch.arange(gw).repeat(gh)
    return (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)


def sample_equal(mask: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Indices [B, k] of ``k`` members of each row of ``mask`` [B, N], chosen
    uniformly at random and returned in raster order."""
    scores = torch.rand(mask.shape, generator=generator)
    scores.masked_fill_(~mask, 2.0)
    idx = scores.topk(k, dim=1, largest=False).indices
    return idx.sort(dim=1).values


class MultiBlockMasker:
    def __init__(self, config: MultiBlockConfig) -> None:
        self.config = config

    def __call__(
        self, batch_size: int, patch_grid: tuple[int, int], generator: torch.Generator
    ) -> Masks:
        cfg = self.config
        grid = (int(patch_grid[0]), int(patch_grid[1]))
        n = grid[0] * grid[1]
        min_keep = min(cfg.min_keep, n)
        t_shape = block_shape(grid, cfg.target_scale, cfg.target_aspect, generator)
        c_shape = block_shape(grid, cfg.context_scale, cfg.context_aspect, generator)
        targets = block_masks((batch_size, cfg.num_targets), grid, t_shape, generator)
        context = block_masks((batch_size,), grid, c_shape, generator)
        if not cfg.allow_overlap:
            for _ in range(cfg.max_tries):
                keep = context & ~targets.any(dim=1)
                short = keep.sum(dim=1) < min_keep
                if not short.any():
                    break
                redo = int(short.sum())
                targets[short] = block_masks((redo, cfg.num_targets), grid, t_shape, generator)
                context[short] = block_masks((redo,), grid, c_shape, generator)
            else:
                raise RuntimeError(
                    f"multiblock: could not leave {min_keep} context patches on a {grid} grid "
                    f"after {cfg.max_tries} tries; lower the target scale or num_targets"
                )
            context = keep
        k = int(context.sum(dim=1).min())
        context_idx = sample_equal(context, k, generator)
        t_len = t_shape[0] * t_shape[1]
        target_idx = targets.reshape(-1, n).nonzero()[:, 1].view(batch_size, cfg.num_targets, t_len)
        return Masks(context=[context_idx], targets=list(target_idx.unbind(dim=1)))
