"""Fixed token counts for the multi-block masker (``length_buckets``), so a compiled
step needs one graph per level instead of one per drawn size (jepakit.buckets).

Target blocks keep their rectangle and uniform position; only the block *shape*
drawn for a batch is snapped to a shape whose area is one of the target levels,
the one closest in aspect ratio among the shapes the unbucketed masker itself
draws (so scale and aspect stay within the configured ranges). The context drops
extra random patches down to its level, as the batch equalisation already does.
Levels come from the masker's own distribution on this grid and batch size
(:func:`jepakit.buckets.best_levels`), measured once from a fixed seed, so they
are the same in every process and never draw from the caller's generator.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import attrs
import torch

from jepakit.buckets import best_levels, snap
from jepakit.masking import fit_shape

MESH = 64
"""Scale and log-aspect values per axis when listing the block shapes a range yields."""
SIM_BATCHES = 256
"""Batches drawn (fixed seed) to measure the context lengths the levels are chosen from."""
CONTEXT_TAIL = 0.02
"""Fraction of batches whose short context is redrawn rather than given its own level."""

Shape = tuple[int, int]


def block_shapes(grid: tuple[int, int], scale: tuple[float, float],
                 aspect: tuple[float, float]) -> Counter[Shape]:
    """How often each (height, width) comes out of ``block_shape``'s rounding over an
    even mesh of scale and log-aspect values (both are drawn uniformly)."""
    gh, gw = grid
    lo, hi = math.log(aspect[0]), math.log(aspect[1])
    shapes: Counter[Shape] = Counter()
    for i in range(MESH):
        area = (scale[0] + (i + 0.5) / MESH * (scale[1] - scale[0])) * gh * gw
        for j in range(MESH):
            shapes[fit_shape(grid, area, math.exp(lo + (j + 0.5) / MESH * (hi - lo)))] += 1
    return shapes


@attrs.define(frozen=True)
class LengthLevels:
    """The token counts a bucketed masker draws on one grid at one batch size."""

    context: tuple[int, ...]
    """Context lengths (ascending); an empty tuple leaves the context unbucketed."""
    targets: tuple[int, ...]
    """Target block areas (ascending)."""
    shapes: dict[int, tuple[Shape, ...]]
    """Target area -> the block shapes of that area the masker may draw."""

    @property
    def floor(self) -> int:
        """Fewest context patches an image should keep (images below are redrawn)."""
        return self.context[0] if self.context else 0

    @property
    def count(self) -> int:
        """Distinct (context, target) length pairs: graphs a predictor compiles."""
        return max(len(self.context), 1) * len(self.targets)

    def target_shape(self, drawn: Shape) -> Shape:
        """The shape of the drawn one's area level closest to it in aspect ratio."""
        area = snap(drawn[0] * drawn[1], self.targets, "nearest")
        aspect = math.log(drawn[0] / drawn[1])
        return min(self.shapes[area], key=lambda s: (abs(math.log(s[0] / s[1]) - aspect), s))

    def context_length(self, k: int) -> int:
        return snap(k, self.context, "down") if self.context else k


def target_levels(grid: tuple[int, int], scale: tuple[float, float],
                  aspect: tuple[float, float], count: int) -> LengthLevels:
    """Levels for the target areas only (context unbucketed)."""
    shapes = block_shapes(grid, scale, aspect)
    areas: Counter[int] = Counter()
    for (h, w), n in shapes.items():
        areas[h * w] += n
    targets = best_levels(areas.elements(), count, "nearest")
    by_area = {a: tuple(sorted(s for s in shapes if s[0] * s[1] == a)) for a in targets}
    return LengthLevels(context=(), targets=targets, shapes=by_area)


def length_levels(count: int, grid: tuple[int, int], batch_size: int,
                  scale: tuple[float, float], aspect: tuple[float, float],
                  draw: Callable[[torch.Generator, LengthLevels], int]) -> LengthLevels:
    """Target levels, then context levels from the batch context lengths ``draw``
    gives with those target levels (SIM_BATCHES batches from seed 0). The shortest
    CONTEXT_TAIL of batches is left below the first level: the masker redraws their
    short images instead of spending a level on them."""
    levels = target_levels(grid, scale, aspect, count)
    generator = torch.Generator().manual_seed(0)
    lengths = sorted(draw(generator, levels) for _ in range(SIM_BATCHES))
    floor = lengths[int(CONTEXT_TAIL * len(lengths))]
    context = best_levels((k for k in lengths if k >= floor), count, "down")
    return attrs.evolve(levels, context=context)
