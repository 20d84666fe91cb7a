"""Multi-block masker invariants (I-JEPA section 3), checked over random grids and seeds."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jepakit_ijepa.multiblock import (
    MultiBlockConfig,
    MultiBlockMasker,
    block_masks,
    block_shape,
    sample_equal,
)

from jepakit.contracts import Masks
from jepakit.errors import JepakitError


def _draw(masker: MultiBlockMasker, batch: int, grid: tuple[int, int], seed: int) -> Masks:
    return masker(batch, grid, torch.Generator().manual_seed(seed))


def _shape_bounds(scale, aspect, grid) -> tuple[float, float]:
    """Smallest and largest block area (in patches) that block_shape's rounding allows.

    A block of area A and aspect r has real sides hf = sqrt(A r), wf = sqrt(A / r).
    Rounding each side moves it by at most 1/2, so h * w lies within
    A -+ (hf + wf) / 2 (+ 1/4). When a side does not fit the grid it is clipped to
    the grid side g and the other side rounded from A / g, which moves the area
    by at most g / 2. Sides are at least 1 and the area at most N.
    """
    gh, gw = grid
    n = gh * gw
    a_lo, a_hi = scale[0] * n, scale[1] * n
    r_lo, r_hi = aspect
    sides = math.sqrt(a_hi * r_hi) + math.sqrt(a_hi / r_lo)  # largest hf + wf
    slack = max(0.5 * sides + 0.25, max(gh, gw) / 2)
    return max(1.0, a_lo - slack), min(float(n), a_hi + slack)


def _is_rectangle(idx: torch.Tensor, width: int) -> tuple[int, int] | None:
    rows, cols = idx // width, idx % width
    h = int(rows.max() - rows.min()) + 1
    w = int(cols.max() - cols.min()) + 1
    return (h, w) if h * w == idx.numel() else None


grids = st.tuples(st.integers(2, 16), st.integers(2, 16))


@settings(max_examples=150, deadline=None)
@given(
    grid=grids,
    batch=st.integers(1, 16),
    num_targets=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    allow_overlap=st.booleans(),
)
def test_mask_invariants(grid, batch, num_targets, seed, allow_overlap):
    cfg = MultiBlockConfig(num_targets=num_targets, allow_overlap=allow_overlap, min_keep=1)
    masks = _draw(MultiBlockMasker(cfg), batch, grid, seed)
    n = grid[0] * grid[1]

    assert len(masks.context) == 1
    assert len(masks.targets) == num_targets
    ctx = masks.context[0]
    assert ctx.dtype == torch.int64
    assert ctx.ndim == 2 and ctx.shape[0] == batch and ctx.shape[1] >= 1
    lo, hi = _shape_bounds(cfg.target_scale, cfg.target_aspect, grid)
    t_len = masks.targets[0].shape[1]
    assert lo - 1e-9 <= t_len <= hi + 1e-9, (t_len, lo, hi)
    for tgt in masks.targets:
        assert tgt.dtype == torch.int64
        assert tgt.shape == (batch, t_len)  # all targets share the batch's block shape
    for mask in [ctx, *masks.targets]:
        assert int(mask.min()) >= 0 and int(mask.max()) < n
        for row in mask:
            assert row.unique().numel() == row.numel()
    for b in range(batch):
        shapes = {_is_rectangle(t[b], grid[1]) for t in masks.targets}
        assert None not in shapes and len(shapes) == 1  # rectangles of one shape
        if not allow_overlap:
            target_set = set(torch.cat([t[b] for t in masks.targets]).tolist())
            assert target_set.isdisjoint(ctx[b].tolist())


@settings(max_examples=50, deadline=None)
@given(grid=grids, batch=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_overlap_allowed_context_is_the_whole_block(grid, batch, seed):
    cfg = MultiBlockConfig(allow_overlap=True, context_scale=(0.3, 0.6), context_aspect=(0.5, 2.0))
    masks = _draw(MultiBlockMasker(cfg), batch, grid, seed)
    ctx = masks.context[0]
    for b in range(batch):
        # Without removal every context is its full rectangle, the same size for all images.
        assert _is_rectangle(ctx[b], grid[1]) is not None


@settings(max_examples=50, deadline=None)
@given(grid=grids, batch=st.integers(1, 8), num_targets=st.integers(1, 4),
       seed=st.integers(0, 2**31 - 1))
def test_deterministic_and_picklable(grid, batch, num_targets, seed):
    masker = MultiBlockMasker(MultiBlockConfig(num_targets=num_targets, min_keep=1))
    a = _draw(masker, batch, grid, seed)
    b = _draw(masker, batch, grid, seed)
    clone = pickle.loads(pickle.dumps(masker))
    c = _draw(clone, batch, grid, seed)
    for other in (b, c):
        for x, y in zip(a.context + a.targets, other.context + other.targets, strict=True):
            assert torch.equal(x, y)


def test_different_seeds_give_different_masks():
    masker = MultiBlockMasker(MultiBlockConfig())
    draws = [_draw(masker, 8, (14, 14), seed) for seed in range(5)]
    first = torch.cat(draws[0].targets, dim=1)
    assert any(not torch.equal(first, torch.cat(d.targets, dim=1)) for d in draws[1:])


def test_generator_advances_between_batches():
    masker = MultiBlockMasker(MultiBlockConfig())
    g = torch.Generator().manual_seed(0)
    a, b = masker(8, (14, 14), g), masker(8, (14, 14), g)
    assert not torch.equal(torch.cat(a.targets, 1), torch.cat(b.targets, 1))


def test_paper_defaults_on_14x14():
    cfg = MultiBlockConfig()
    assert cfg.num_targets == 4
    assert cfg.target_scale == (0.15, 0.2) and cfg.target_aspect == (0.75, 1.5)
    assert cfg.context_scale == (0.85, 1.0) and cfg.allow_overlap is False
    masker = MultiBlockMasker(cfg)
    sizes, ctx_sizes = set(), []
    for seed in range(40):
        masks = _draw(masker, 16, (14, 14), seed)
        assert len(masks.targets) == 4
        sizes.add(masks.targets[0].shape[1])
        ctx_sizes.append(masks.context[0].shape[1])
    lo, hi = _shape_bounds(cfg.target_scale, cfg.target_aspect, (14, 14))
    assert all(lo <= s <= hi for s in sizes)
    assert 20 <= min(sizes) and max(sizes) <= 48  # 15-20 % of 196, up to rounding
    assert len(sizes) >= 4  # scale and aspect drawn independently: many shapes
    # Context: a 13x13 or 14x14 block less four targets; never empty, never the whole grid.
    assert all(cfg.min_keep <= k < 196 for k in ctx_sizes)


def test_every_patch_reachable_on_14x14():
    masker = MultiBlockMasker(MultiBlockConfig())
    g = torch.Generator().manual_seed(0)
    in_target = torch.zeros(196, dtype=torch.bool)
    in_context = torch.zeros(196, dtype=torch.bool)
    for _ in range(100):
        masks = masker(16, (14, 14), g)
        in_context[masks.context[0].reshape(-1)] = True
        for t in masks.targets:
            in_target[t.reshape(-1)] = True
    assert in_target.all(), torch.nonzero(~in_target).flatten().tolist()
    assert in_context.all(), torch.nonzero(~in_context).flatten().tolist()
    # The last row and column (never reached by the official collator) included.
    assert in_target.view(14, 14)[13].all() and in_target.view(14, 14)[:, 13].all()


def test_context_equalised_by_random_drop_not_raster_truncation():
    """Equalising context lengths keeps random members, so the bottom-right is not
    systematically dropped (the official collator's truncation bias)."""
    masker = MultiBlockMasker(MultiBlockConfig())
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(196)
    for _ in range(50):
        ctx = masker(32, (14, 14), g).context[0]
        counts += torch.bincount(ctx.reshape(-1), minlength=196)
    grid = counts.view(14, 14)
    top_left, bottom_right = grid[:7, :7].sum(), grid[7:, 7:].sum()
    assert bottom_right > 0.7 * top_left


def test_block_shape_respects_grid_and_scale():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        h, w = block_shape((5, 9), (0.1, 0.9), (0.3, 3.0), g)
        assert 1 <= h <= 5 and 1 <= w <= 9
    # A full-scale square block on a square grid is the grid.
    assert block_shape((6, 6), (1.0, 1.0), (1.0, 1.0), g) == (6, 6)


def test_block_masks_are_rectangles_of_the_shape():
    g = torch.Generator().manual_seed(0)
    masks = block_masks((10, 3), (7, 5), (2, 3), g)
    assert masks.shape == (10, 3, 35)
    assert (masks.sum(-1) == 6).all()
    for m in masks.reshape(-1, 35):
        assert _is_rectangle(torch.nonzero(m).flatten(), 5) == (2, 3)


def test_sample_equal_picks_members_sorted():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(6, 20, generator=g) < 0.5
    mask[:, :3] = True
    k = int(mask.sum(1).min())
    idx = sample_equal(mask, k, g)
    assert idx.shape == (6, k)
    assert torch.equal(idx, idx.sort(dim=1).values)
    assert mask.gather(1, idx).all()


def test_impossible_min_keep_is_a_user_error():
    masker = MultiBlockMasker(MultiBlockConfig(min_keep=16, max_tries=3))
    with pytest.raises(JepakitError, match="could not leave"):
        _draw(masker, 4, (4, 4), 0)


@pytest.mark.parametrize(
    "kwargs",
    [{"target_scale": (0.3, 0.2)}, {"target_scale": (0.0, 0.2)}, {"context_scale": (0.5, 1.5)},
     {"target_aspect": (2.0, 1.0)}],
)
def test_config_rejects_bad_intervals(kwargs):
    with pytest.raises(ValueError):
        MultiBlockConfig(**kwargs)


# ---------------------------------------------------------------- official mode


def test_official_mode_reproduces_upstream_quirks():
    """The upstream collator: blocks never reach the last row or column, and on a
    14x14 grid the context is always the top-left square, truncated in raster order."""
    masker = MultiBlockMasker(MultiBlockConfig(mode="official", min_keep=10))
    g = torch.Generator().manual_seed(0)
    in_target = torch.zeros(196, dtype=torch.bool)
    in_context = torch.zeros(196, dtype=torch.bool)
    t_sizes = set()
    for _ in range(50):
        masks = masker(16, (14, 14), g)
        assert len(masks.targets) == 4
        in_context[masks.context[0].reshape(-1)] = True
        for t in masks.targets:
            in_target[t.reshape(-1)] = True
        t_sizes.add(masks.targets[0].shape[1])
        ctx = masks.context[0]
        assert torch.equal(ctx, ctx.sort(dim=1).values)
    assert not in_target.view(14, 14)[13].any() and not in_target.view(14, 14)[:, 13].any()
    assert not in_context.view(14, 14)[13].any() and not in_context.view(14, 14)[:, 13].any()
    assert in_target.view(14, 14)[:13, :13].all()
    # One random number drives both scale and aspect: few distinct target sizes.
    assert all(20 <= s <= 48 for s in t_sizes)


@settings(max_examples=50, deadline=None)
@given(grid=st.tuples(st.integers(8, 16), st.integers(8, 16)), batch=st.integers(1, 8),
       seed=st.integers(0, 2**31 - 1))
def test_official_mode_shapes_and_ranges(grid, batch, seed):
    masker = MultiBlockMasker(MultiBlockConfig(mode="official", min_keep=4))
    masks = _draw(masker, batch, grid, seed)
    again = _draw(pickle.loads(pickle.dumps(masker)), batch, grid, seed)
    n = grid[0] * grid[1]
    for mask, same in zip(masks.context + masks.targets, again.context + again.targets,
                          strict=True):
        assert mask.shape[0] == batch and mask.shape[1] >= 1
        assert int(mask.min()) >= 0 and int(mask.max()) < n
        assert torch.equal(mask, same)
        for row in mask:
            assert row.unique().numel() == row.numel()
