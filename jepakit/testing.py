"""Conformance kit for maskers: any registered masker, shipped or third-party.

    from jepakit.registry import default_registry
    from jepakit.testing import check_masker

    for name in default_registry().components("masker"):
        check_masker(default_registry(), name)

:func:`check_masker` draws patch grids (small and non-square ones included),
batch sizes, seeds and, when given a hypothesis strategy, parameters, and checks
every invariant the engine relies on (docs/plugins.md#contracts):

- the result is a :class:`jepakit.Masks` with at least one context and one target,
  each a LongTensor [B, K] with K >= 1 (equal lengths across the batch);
- indices lie in ``[0, N)`` and are unique within each mask;
- context and targets are disjoint (unless overlap is allowed): every context with
  every target, or, for a masker with ``pairing = "zip"`` (V-JEPA's several mask
  configurations), ``context[c]`` with ``targets[c]``, and as many contexts as targets;
- targets are rectangles (boxes on a video grid) within the configured scale bounds,
  and the context lies in a box no larger than the context scale allows, up to rounding;
- the same generator seed gives the same masks, whatever torch's global RNG;
- the masker pickles (DataLoader workers) and its copy draws the same masks;
- over many draws every patch is in some context and in some target.

Which of these apply is read from the masker (see :func:`expectations`): a config
field ``allow_overlap`` turns off the disjointness check when true; config fields
``target_scale`` / ``context_scale`` turn on the scale checks; a ``conformance``
attribute (a mapping) on the masker overrides any of :class:`Expectations`' fields,
e.g. ``{"context_reachable": False}`` for a masker whose context by design never
covers some patches, or ``{"grid_ranks": (2, 3)}`` for one that also draws on video
grids (frames, rows, columns); grids are drawn of every rank the masker declares
(default ``(2,)``: image grids only).
A masker says "not on this grid with these parameters" by raising
:class:`jepakit.masking.MaskingError`; such draws are skipped, but the masker's
defaults must work on a 14x14 grid (and, when it supports video, on 8x14x14).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch

from jepakit.config import is_config_class
from jepakit.contracts import Masks
from jepakit.coverage import describe_patches
from jepakit.errors import ConfigError, did_you_mean
from jepakit.masking import MaskingError, format_grid, grid_size, to_bool

REFERENCE_GRID = (14, 14)
"""The grid every masker's defaults must work on (ViT-H/14 at 224 px)."""
REFERENCE_VIDEO_GRID = (8, 14, 14)
"""The video grid the defaults of a masker supporting 3-D grids must work on (16 frames
in tubelets of 2 at 224 px with 16-pixel patches, V-JEPA's ViT-L/16)."""
PAIRINGS = ("all", "zip")


class ConformanceError(AssertionError):
    """A masker broke an invariant; the message says which, and for which input."""


@attrs.define(frozen=True)
class Expectations:
    """What a masker promises, beyond the invariants every masker must keep."""

    disjoint: bool = True
    """No patch is in both the context and a target of the same image."""
    target_scale: tuple[float, float] | None = None
    """Each target is one rectangle covering this fraction of the grid, up to rounding."""
    context_scale: tuple[float, float] | None = None
    """The context lies within a box of at most this fraction of the grid, up to rounding."""
    context_reachable: bool = True
    """Every patch is in some context, given enough draws."""
    target_reachable: bool = True
    """Every patch is in some target, given enough draws."""
    min_grid: tuple[int, ...] = (2, 2)
    """The smallest (rows, columns) grid the masker supports; a third, leading entry
    bounds the frames of a video grid (frames, rows, columns; default 1 frame)."""
    grid_ranks: tuple[int, ...] = (2,)
    """The grid ranks the masker supports: 2 (rows, columns), 3 (frames, rows, columns)."""
    pairing: str = "all"
    """Which context pairs with which target (the masker's ``pairing`` attribute):
    "all" (every context with every target) or "zip" (``context[c]`` with ``targets[c]``)."""


def expectations(masker: Any) -> Expectations:
    """The masker's :class:`Expectations`: inferred from its ``config`` (``allow_overlap``,
    ``target_scale``, ``context_scale``) and its ``pairing`` attribute, then overridden by
    its ``conformance`` mapping."""
    found: dict[str, Any] = {}
    pairing = getattr(masker, "pairing", "all")
    if pairing not in PAIRINGS:
        raise ConfigError(f"{type(masker).__name__}.pairing: expected one of {PAIRINGS}, got "
                          f"{pairing!r}")
    found["pairing"] = pairing
    config = getattr(masker, "config", None)
    if config is not None and is_config_class(type(config)):
        if hasattr(config, "allow_overlap"):
            found["disjoint"] = not bool(config.allow_overlap)
        for key in ("target_scale", "context_scale"):
            value = getattr(config, key, None)
            if isinstance(value, (tuple, list)) and len(value) == 2:
                found[key] = (float(value[0]), float(value[1]))
    declared = getattr(masker, "conformance", None) or {}
    if not isinstance(declared, Mapping):
        raise TypeError(f"{type(masker).__name__}.conformance must be a mapping, got {declared!r}")
    fields = [f.name for f in attrs.fields(Expectations)]
    for key in declared:
        if key not in fields:
            raise ConfigError(f"{type(masker).__name__}.conformance: unknown key '{key}'"
                              f"{did_you_mean(str(key), fields)}; valid: {', '.join(fields)}")
    found.update(declared)
    for key in ("target_scale", "context_scale", "min_grid", "grid_ranks"):
        if found.get(key) is not None:
            found[key] = tuple(found[key])
    bad = [r for r in found.get("grid_ranks", ()) if r not in (2, 3)]
    if bad or found.get("grid_ranks") == ():
        raise ConfigError(f"{type(masker).__name__}.conformance: grid_ranks must list 2 and/or 3,"
                          f" got {found['grid_ranks']}")
    return Expectations(**found)


def _fail(where: str, message: str) -> ConformanceError:
    return ConformanceError(f"{where}: {message}")


def _noun(grid: Sequence[int]) -> str:
    """What one row of a batch is: an image, or a clip on a video grid."""
    return "clip" if len(grid) == 3 else "image"


def _patch(index: int, grid: Sequence[int]) -> str:
    """Where patch ``index`` lies: ``(row, column 4, 2)`` or ``(frame, row, column 1, 4, 2)``."""
    place = []
    rest = int(index)
    for size in reversed(grid):
        rest, at = divmod(rest, int(size))
        place.append(at)
    axes = ("frame", "row", "column")[3 - len(grid):] if len(grid) <= 3 else ("axis",) * len(grid)
    return f"{', '.join(axes)} {', '.join(str(p) for p in reversed(place))}"


def _check_tensor(t: Any, label: str, batch_size: int, n: int, where: str,
                  noun: str = "image") -> None:
    if not isinstance(t, torch.Tensor):
        raise _fail(where, f"{label} is a {type(t).__name__}, expected a LongTensor [B, K]")
    if t.dtype != torch.int64:
        raise _fail(where, f"{label} has dtype {t.dtype}, expected torch.int64 (LongTensor)")
    if t.dim() != 2 or t.shape[0] != batch_size:
        raise _fail(where, f"{label} has shape {tuple(t.shape)}, expected [{batch_size}, K]: "
                           f"one row per {noun}, equal lengths across the batch")
    if t.shape[1] < 1:
        raise _fail(where, f"{label} is empty (shape {tuple(t.shape)}): every mask needs a patch")
    outside = ((t < 0) | (t >= n)).nonzero()
    if outside.numel():
        row, col = int(outside[0, 0]), int(outside[0, 1])
        raise _fail(where, f"{label} holds index {int(t[row, col])} in {noun} {row}, out of "
                           f"range [0, {n}) for the grid")
    ordered = t.sort(dim=1).values
    dup = (ordered[:, 1:] == ordered[:, :-1]).nonzero()
    if dup.numel():
        row, col = int(dup[0, 0]), int(dup[0, 1])
        raise _fail(where, f"{label} repeats patch {int(ordered[row, col])} in {noun} {row}: "
                           "indices must be unique within a mask")


def _tolerance(*sides: int) -> float:
    """Patches a block of these sides may differ from its drawn size by rounding each
    side by half a patch: half the sum, over the axes, of the product of the other
    sides, plus one ((height + width) / 2 + 1 for a rectangle)."""
    total = 0.0
    for d in range(len(sides)):
        total += math.prod(s for e, s in enumerate(sides) if e != d)
    return total / 2 + 1


def _box(mask: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Sides [B, rank] of the bounding box of each row of indices [B, K] (rows, columns;
    or frames, rows, columns)."""
    sides = []
    rest = mask
    for size in reversed(grid):
        rest, at = rest.div(int(size), rounding_mode="floor"), rest % int(size)
        sides.append(at.max(dim=1).values - at.min(dim=1).values + 1)
    return torch.stack(sides[::-1], dim=1)


def _sides(box: torch.Tensor) -> str:
    return "x".join(str(int(s)) for s in box)


def _check_targets_scale(targets: list[torch.Tensor], grid: Sequence[int],
                         scale: tuple[float, float], where: str) -> None:
    n, noun = grid_size(grid), _noun(grid)
    shape = "one rectangle" if len(grid) == 2 else "one box"
    for j, t in enumerate(targets):
        box = _box(t, grid)
        volume = box.prod(dim=1)
        not_rect = (volume != t.shape[1]).nonzero()
        if not_rect.numel():
            b = int(not_rect[0])
            raise _fail(where, f"targets[{j}] of {noun} {b} is not {shape} ({t.shape[1]} "
                               f"patches in a {_sides(box[b])} box) although "
                               f"target_scale={scale} declares block targets")
        for b in range(t.shape[0]):
            count = t.shape[1]
            tol = _tolerance(*(int(s) for s in box[b]))
            lo, hi = scale[0] * n - tol, max(scale[1] * n + tol, 1)
            if not lo <= count <= hi:
                raise _fail(where, f"targets[{j}] of {noun} {b} is a {_sides(box[b])} block "
                                   f"({count} patches), outside target_scale={scale} of {n} "
                                   f"patches ([{scale[0] * n:.1f}, {scale[1] * n:.1f}] +- {tol} "
                                   "for rounding)")


def _check_context_scale(context: list[torch.Tensor], grid: Sequence[int],
                         scale: tuple[float, float], where: str) -> None:
    n, noun = grid_size(grid), _noun(grid)
    limit = scale[1] * n + _tolerance(*(int(s) for s in grid))
    for i, c in enumerate(context):
        box = _box(c, grid)
        over = (box.prod(dim=1) > limit).nonzero()
        if over.numel():
            b = int(over[0])
            raise _fail(where, f"context[{i}] of {noun} {b} spans a {_sides(box[b])} box, "
                               f"larger than context_scale={scale} allows "
                               f"({scale[1] * n:.1f} of {n} patches, up to rounding)")


def _pairs(masks: Masks, pairing: str, where: str) -> list[tuple[str, torch.Tensor, str,
                                                                  list[torch.Tensor]]]:
    """(context label, context, targets label, targets) to check for disjointness."""
    if pairing == "zip":
        if len(masks.context) != len(masks.targets):
            raise _fail(where, f"pairing 'zip' pairs context[c] with targets[c], but there are "
                               f"{len(masks.context)} contexts and {len(masks.targets)} targets")
        return [(f"context[{c}]", ctx, f"targets[{c}]", [t])
                for c, (ctx, t) in enumerate(zip(masks.context, masks.targets))]
    return [(f"context[{i}]", ctx, "the targets", list(masks.targets))
            for i, ctx in enumerate(masks.context)]


def check_masks(masks: Any, batch_size: int, grid: Sequence[int],
                expect: Expectations | None = None, where: str = "masks") -> None:
    """Check one batch of masks on a grid of any rank against the contract and
    ``expect`` (default: the plain contract, disjoint context and targets); raise
    :class:`ConformanceError` naming the first broken invariant."""
    expect = expect or Expectations()
    n, noun = grid_size(grid), _noun(grid)
    if not isinstance(masks, Masks):
        raise _fail(where, f"returned {type(masks).__name__}, expected jepakit.Masks")
    for label, group in (("context", masks.context), ("targets", masks.targets)):
        if not isinstance(group, (list, tuple)) or not group:
            raise _fail(where, f"{label} must be a non-empty list of LongTensors, got {group!r}")
        for i, t in enumerate(group):
            _check_tensor(t, f"{label}[{i}]", batch_size, n, where, noun)
    if expect.disjoint:
        for c_label, ctx, t_label, targets in _pairs(masks, expect.pairing, where):
            both = to_bool(ctx, n) & to_bool(torch.cat(targets, dim=1), n)
            hit = both.nonzero()
            if hit.numel():
                b, p = int(hit[0, 0]), int(hit[0, 1])
                raise _fail(where, f"{c_label} and {t_label} overlap in {noun} {b} at patch "
                                   f"{p} ({_patch(p, grid)}); declare allow_overlap or "
                                   "conformance={'disjoint': False} if that is intended")
    if expect.target_scale is not None:
        _check_targets_scale(list(masks.targets), grid, expect.target_scale, where)
    if expect.context_scale is not None:
        _check_context_scale(list(masks.context), grid, expect.context_scale, where)


def _same(a: Masks, b: Masks) -> str | None:
    """The first mask where ``a`` and ``b`` differ, or None."""
    for label in ("context", "targets"):
        xs, ys = getattr(a, label), getattr(b, label)
        if len(xs) != len(ys):
            return f"{label} ({len(xs)} vs {len(ys)} masks)"
        for i, (x, y) in enumerate(zip(xs, ys)):
            if x.shape != y.shape or not torch.equal(x, y):
                return f"{label}[{i}]"
    return None


def _draw(masker: Any, batch_size: int, grid: Sequence[int], seed: int) -> Masks:
    return masker(batch_size, tuple(grid), torch.Generator().manual_seed(seed))


def check_case(masker: Any, batch_size: int, grid: Sequence[int], seed: int,
               expect: Expectations | None = None, where: str = "masker") -> Masks:
    """One draw: the invariants, determinism under the seed (whatever torch's global
    RNG), and a pickled copy drawing the same masks. Returns the masks."""
    expect = expect or expectations(masker)
    where = f"{where} (grid {format_grid(grid)}, batch {batch_size}, seed {seed})"
    state = torch.get_rng_state()
    try:
        torch.manual_seed(seed + 1)
        first = _draw(masker, batch_size, grid, seed)
        torch.manual_seed(seed + 2)
        second = _draw(masker, batch_size, grid, seed)
    finally:
        torch.set_rng_state(state)
    check_masks(first, batch_size, grid, expect, where)
    differs = _same(first, second)
    if differs:
        raise _fail(where, f"not deterministic: two calls with torch.Generator().manual_seed({seed})"
                           f" gave different {differs}; draw only from the generator passed in "
                           "(not torch's global RNG, numpy or random)")
    try:
        copy = pickle.loads(pickle.dumps(masker))
    except Exception as exc:  # any pickling failure is the finding
        raise _fail(where, f"does not pickle ({type(exc).__name__}: {exc}); maskers run in "
                           "DataLoader workers and must pickle") from exc
    differs = _same(first, _draw(copy, batch_size, grid, seed))
    if differs:
        raise _fail(where, f"its pickled copy draws different {differs} from the same seed")
    return first


def check_reachable(masker: Any, grid: Sequence[int], seed: int = 0, batch_size: int = 32,
                    max_batches: int = 64, where: str = "masker",
                    expect: Expectations | None = None) -> None:
    """Every patch is in some context and in some target (as far as ``expect``
    promises) within ``max_batches`` draws."""
    expect = expect or expectations(masker)
    n = grid_size(grid)
    seen = {}
    if expect.context_reachable:
        seen["context"] = torch.zeros(n, dtype=torch.bool)
    if expect.target_reachable:
        seen["target"] = torch.zeros(n, dtype=torch.bool)
    if not seen:
        return
    for i in range(max_batches):
        masks = _draw(masker, batch_size, grid, seed + i)
        if "context" in seen:
            seen["context"] |= to_bool(torch.cat(list(masks.context), dim=1), n).any(dim=0)
        if "target" in seen:
            seen["target"] |= to_bool(torch.cat(list(masks.targets), dim=1), n).any(dim=0)
        if all(bool(s.all()) for s in seen.values()):
            return
    for label, s in seen.items():
        if not bool(s.all()):
            never = describe_patches((~s).view(*grid))
            raise _fail(f"{where} (grid {format_grid(grid)})",
                        f"patches never in any {label} over {max_batches * batch_size} "
                        f"{_noun(grid)}s: {never}; declare conformance={{'{label}_reachable': "
                        "False} if that is intended")


def _reference(masker: Any, name: str, base: dict[str, Any], ranks: Sequence[int]) -> None:
    """The defaults (or ``base``) work on the reference grid of every rank checked."""
    for grid in (REFERENCE_GRID, REFERENCE_VIDEO_GRID):
        if len(grid) not in ranks:
            continue
        try:
            check_case(masker, 4, grid, 0, where=f"masker '{name}' {base}")
        except MaskingError as exc:
            raise ConformanceError(f"masker '{name}' {base}: fails on the reference "
                                   f"{format_grid(grid)} grid: {exc}") from exc


def check_masker(registry: Any, name: str, params: Any = None, *, max_examples: int = 20,
                 max_side: int = 16, max_batch: int = 8, reach_batches: int = 32,
                 max_frames: int = 4, grid_ranks: Sequence[int] | None = None) -> None:
    """Check the registered masker ``name`` over hypothesis-drawn grids (from its
    ``min_grid`` up to ``max_side``, non-square ones included; video grids of up to
    ``max_frames`` frames when it supports them), batch sizes and seeds.
    ``params``: None (defaults), a dict, or a hypothesis strategy of dicts; drawn params
    the config rejects are skipped. ``grid_ranks``: the grid ranks to draw (default
    every rank the masker declares; pass ``(3,)`` to be sure video grids are drawn).
    Raises :class:`ConformanceError`."""
    try:
        from hypothesis import HealthCheck, Phase, given, reject, settings
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - a dependency, unless removed by hand
        raise ImportError("jepakit.testing.check_masker needs hypothesis (a jepakit "
                          "dependency): pip install hypothesis") from exc
    from jepakit.registry import default_registry

    registry = registry or default_registry()
    registry.get("masker", name)  # unknown names fail here, with the valid ones listed
    base = dict(params) if isinstance(params, Mapping) else {}
    reference = registry.create("masker", name, base)
    declared = expectations(reference).grid_ranks
    ranks = tuple(grid_ranks) if grid_ranks is not None else declared
    unsupported = [r for r in ranks if r not in declared]
    if unsupported:
        raise ConformanceError(f"masker '{name}' declares grid_ranks={declared}, asked to check "
                               f"rank(s) {unsupported}")
    _reference(reference, name, base, ranks)
    strategy = st.just(base) if params is None or isinstance(params, Mapping) else params

    # no shrinking: the first failure's message already names the input, and shrinking
    # a reachability failure would redraw thousands of batches
    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def run(data: Any) -> None:
        drawn = data.draw(strategy, label="params")
        try:
            masker = registry.create("masker", name, drawn)
        except ConfigError:
            reject()
        expect = expectations(masker)
        grid = _draw_grid(data, st, expect, ranks, max_side, max_frames)
        batch_size = data.draw(st.integers(1, max_batch), label="batch_size")
        seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
        where = f"masker '{name}' {drawn}"
        try:
            check_case(masker, batch_size, grid, seed, expect, where)
            check_reachable(masker, grid, seed, max_batches=reach_batches, where=where,
                            expect=expect)
        except MaskingError:
            reject()

    run()


def _draw_grid(data: Any, st: Any, expect: Expectations, ranks: Sequence[int], max_side: int,
               max_frames: int) -> tuple[int, ...]:
    """A grid of one of ``ranks``, each side from the masker's ``min_grid`` up."""
    rank = data.draw(st.sampled_from(sorted(ranks)), label="rank") if len(ranks) > 1 else ranks[0]
    min_h, min_w = expect.min_grid[-2:]
    min_t = expect.min_grid[0] if len(expect.min_grid) == 3 else 1
    grid = (data.draw(st.integers(min_h, max(min_h, max_side)), label="rows"),
            data.draw(st.integers(min_w, max(min_w, max_side)), label="columns"))
    if rank == 3:
        frames = data.draw(st.integers(min_t, max(min_t, max_frames)), label="frames")
        return (frames, *grid)
    return grid
