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
- context and targets are disjoint (unless overlap is allowed);
- targets are rectangles within the configured scale bounds, and the context
  lies in a box no larger than the context scale allows, up to rounding;
- the same generator seed gives the same masks, whatever torch's global RNG;
- the masker pickles (DataLoader workers) and its copy draws the same masks;
- over many draws every patch is in some context and in some target.

Which of these apply is read from the masker (see :func:`expectations`): a config
field ``allow_overlap`` turns off the disjointness check when true; config fields
``target_scale`` / ``context_scale`` turn on the scale checks; a ``conformance``
attribute (a mapping) on the masker overrides any of :class:`Expectations`' fields,
e.g. ``{"context_reachable": False}`` for a masker whose context by design never
covers some patches.
A masker says "not on this grid with these parameters" by raising
:class:`jepakit.masking.MaskingError`; such draws are skipped, but the masker's
defaults must work on a 14x14 grid.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import attrs
import torch

from jepakit.config import is_config_class
from jepakit.contracts import Masks
from jepakit.coverage import describe_patches
from jepakit.errors import ConfigError, did_you_mean
from jepakit.masking import MaskingError, to_bool

REFERENCE_GRID = (14, 14)
"""The grid every masker's defaults must work on (ViT-H/14 at 224 px)."""


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
    min_grid: tuple[int, int] = (2, 2)
    """The smallest (rows, columns) grid the masker supports."""


def expectations(masker: Any) -> Expectations:
    """The masker's :class:`Expectations`: inferred from its ``config`` (``allow_overlap``,
    ``target_scale``, ``context_scale``), then overridden by its ``conformance`` mapping."""
    found: dict[str, Any] = {}
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
    for key in ("target_scale", "context_scale", "min_grid"):
        if found.get(key) is not None:
            found[key] = tuple(found[key])
    return Expectations(**found)


def _fail(where: str, message: str) -> ConformanceError:
    return ConformanceError(f"{where}: {message}")


def _patch(index: int, grid: tuple[int, int]) -> tuple[int, int]:
    return divmod(int(index), grid[1])


def _check_tensor(t: Any, label: str, batch_size: int, n: int, where: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise _fail(where, f"{label} is a {type(t).__name__}, expected a LongTensor [B, K]")
    if t.dtype != torch.int64:
        raise _fail(where, f"{label} has dtype {t.dtype}, expected torch.int64 (LongTensor)")
    if t.dim() != 2 or t.shape[0] != batch_size:
        raise _fail(where, f"{label} has shape {tuple(t.shape)}, expected [{batch_size}, K]: "
                           "one row per image, equal lengths across the batch")
    if t.shape[1] < 1:
        raise _fail(where, f"{label} is empty (shape {tuple(t.shape)}): every mask needs a patch")
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= n:
        bad = low if low < 0 else high
        raise _fail(where, f"{label} holds index {bad}, out of range [0, {n}) for the grid")
    ordered = t.sort(dim=1).values
    dup = (ordered[:, 1:] == ordered[:, :-1]).nonzero()
    if dup.numel():
        row, col = int(dup[0, 0]), int(dup[0, 1])
        raise _fail(where, f"{label} repeats patch {int(ordered[row, col])} in image {row}: "
                           "indices must be unique within a mask")


def _tolerance(height: int, width: int) -> float:
    """Patches a block of these sides may differ from its drawn area by rounding its sides."""
    return (height + width) / 2 + 1


def _box(mask: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Height and width [B] of the bounding box of each row of indices [B, K]."""
    rows, cols = mask // grid[1], mask % grid[1]
    height = rows.max(dim=1).values - rows.min(dim=1).values + 1
    width = cols.max(dim=1).values - cols.min(dim=1).values + 1
    return height, width


def _check_targets_scale(targets: list[torch.Tensor], grid: tuple[int, int],
                         scale: tuple[float, float], where: str) -> None:
    n = grid[0] * grid[1]
    for j, t in enumerate(targets):
        height, width = _box(t, grid)
        area = height * width
        not_rect = (area != t.shape[1]).nonzero()
        if not_rect.numel():
            b = int(not_rect[0])
            raise _fail(where, f"targets[{j}] of image {b} is not one rectangle ({t.shape[1]} "
                               f"patches in a {int(height[b])}x{int(width[b])} box) although "
                               f"target_scale={scale} declares block targets")
        for b in range(t.shape[0]):
            h, w, count = int(height[b]), int(width[b]), t.shape[1]
            tol = _tolerance(h, w)
            lo, hi = scale[0] * n - tol, max(scale[1] * n + tol, 1)
            if not lo <= count <= hi:
                raise _fail(where, f"targets[{j}] of image {b} is a {h}x{w} block ({count} patches),"
                                   f" outside target_scale={scale} of {n} patches "
                                   f"([{scale[0] * n:.1f}, {scale[1] * n:.1f}] +- {tol} for rounding)")


def _check_context_scale(context: list[torch.Tensor], grid: tuple[int, int],
                         scale: tuple[float, float], where: str) -> None:
    n = grid[0] * grid[1]
    limit = scale[1] * n + _tolerance(*grid)
    for i, c in enumerate(context):
        height, width = _box(c, grid)
        area = height * width
        over = (area > limit).nonzero()
        if over.numel():
            b = int(over[0])
            raise _fail(where, f"context[{i}] of image {b} spans a {int(height[b])}x"
                               f"{int(width[b])} box, larger than context_scale={scale} allows "
                               f"({scale[1] * n:.1f} of {n} patches, up to rounding)")


def check_masks(masks: Any, batch_size: int, grid: tuple[int, int],
                expect: Expectations | None = None, where: str = "masks") -> None:
    """Check one batch of masks against the contract and ``expect`` (default: the
    plain contract, disjoint context and targets); raise :class:`ConformanceError`
    naming the first broken invariant."""
    expect = expect or Expectations()
    n = grid[0] * grid[1]
    if not isinstance(masks, Masks):
        raise _fail(where, f"returned {type(masks).__name__}, expected jepakit.Masks")
    for label, group in (("context", masks.context), ("targets", masks.targets)):
        if not isinstance(group, (list, tuple)) or not group:
            raise _fail(where, f"{label} must be a non-empty list of LongTensors, got {group!r}")
        for i, t in enumerate(group):
            _check_tensor(t, f"{label}[{i}]", batch_size, n, where)
    if expect.disjoint:
        targets = torch.cat(list(masks.targets), dim=1)
        for i, c in enumerate(masks.context):
            both = to_bool(c, n) & to_bool(targets, n)
            hit = both.nonzero()
            if hit.numel():
                b, p = int(hit[0, 0]), int(hit[0, 1])
                raise _fail(where, f"context[{i}] and the targets overlap in image {b} at patch "
                                   f"{p} (row, column {_patch(p, grid)}); declare allow_overlap or "
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


def _draw(masker: Any, batch_size: int, grid: tuple[int, int], seed: int) -> Masks:
    return masker(batch_size, grid, torch.Generator().manual_seed(seed))


def check_case(masker: Any, batch_size: int, grid: tuple[int, int], seed: int,
               expect: Expectations | None = None, where: str = "masker") -> Masks:
    """One draw: the invariants, determinism under the seed (whatever torch's global
    RNG), and a pickled copy drawing the same masks. Returns the masks."""
    expect = expect or expectations(masker)
    where = f"{where} (grid {grid[0]}x{grid[1]}, batch {batch_size}, seed {seed})"
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


def check_reachable(masker: Any, grid: tuple[int, int], seed: int = 0, batch_size: int = 32,
                    max_batches: int = 64, where: str = "masker",
                    expect: Expectations | None = None) -> None:
    """Every patch is in some context and in some target (as far as ``expect``
    promises) within ``max_batches`` draws."""
    expect = expect or expectations(masker)
    n = grid[0] * grid[1]
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
            never = describe_patches((~s).view(grid))
            raise _fail(f"{where} (grid {grid[0]}x{grid[1]})",
                        f"patches never in any {label} over {max_batches * batch_size} images: "
                        f"{never}; declare conformance={{'{label}_reachable': False}} if that is "
                        "intended")


def check_masker(registry: Any, name: str, params: Any = None, *, max_examples: int = 20,
                 max_side: int = 16, max_batch: int = 8, reach_batches: int = 32) -> None:
    """Check the registered masker ``name`` over hypothesis-drawn grids (from its
    ``min_grid`` up to ``max_side``, non-square ones included), batch sizes and
    seeds. ``params``: None (defaults), a dict, or a hypothesis strategy of dicts;
    drawn params the config rejects are skipped. Raises :class:`ConformanceError`."""
    try:
        from hypothesis import HealthCheck, Phase, given, reject, settings
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis is a dev dependency
        raise ImportError("jepakit.testing.check_masker needs hypothesis: "
                          "pip install 'jepakit[dev]'") from exc
    from jepakit.registry import default_registry

    registry = registry or default_registry()
    registry.get("masker", name)  # unknown names fail here, with the valid ones listed
    base = dict(params) if isinstance(params, Mapping) else {}
    reference = registry.create("masker", name, base)
    try:
        check_case(reference, 4, REFERENCE_GRID, 0, where=f"masker '{name}' {base}")
    except MaskingError as exc:
        raise ConformanceError(f"masker '{name}' {base}: fails on the reference "
                               f"{REFERENCE_GRID[0]}x{REFERENCE_GRID[1]} grid: {exc}") from exc
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
        min_h, min_w = expect.min_grid
        grid = (data.draw(st.integers(min_h, max(min_h, max_side)), label="rows"),
                data.draw(st.integers(min_w, max(min_w, max_side)), label="columns"))
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
