"""The paper's alternative maskers (I-JEPA Table 6) and BEiT's blockwise masking:
what each draws, beyond the invariants the conformance kit checks."""

from __future__ import annotations

import pytest
import torch
from jepakit_masks import (
    BlockConfig,
    BlockMasker,
    BlockwiseConfig,
    BlockwiseMasker,
    RandomConfig,
    RandomMasker,
    RasterizedConfig,
    RasterizedMasker,
)
from jepakit_masks.rasterized import quadrants

from jepakit.errors import ConfigError
from jepakit.masking import MaskingError, to_bool


def _draw(masker, batch: int, grid: tuple[int, int], seed: int = 0):
    return masker(batch, grid, torch.Generator().manual_seed(seed))


def _partition(masks, n: int) -> None:
    """Context and targets together are every patch, each patch once."""
    both = torch.cat([*masks.context, *masks.targets], dim=1)
    assert both.shape[1] == n
    assert to_bool(both, n).all()


# -- random ------------------------------------------------------------------------------------


def test_random_splits_every_image_at_the_ratio():
    masks = _draw(RandomMasker(RandomConfig()), 16, (14, 14))
    assert masks.targets[0].shape == (16, round(0.6 * 196))
    assert masks.context[0].shape == (16, 196 - round(0.6 * 196))
    for b in range(16):
        _partition(type(masks)(context=[masks.context[0][b:b + 1]],
                               targets=[masks.targets[0][b:b + 1]]), 196)


def test_random_targets_are_uniform_over_patches():
    masker = RandomMasker(RandomConfig(mask_ratio=0.5))
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(64)
    for _ in range(100):
        counts += to_bool(masker(32, (8, 8), g).targets[0], 64).sum(0)
    p = counts / 3200
    assert float(p.min()) > 0.44 and float(p.max()) < 0.56


def test_random_keeps_a_patch_on_each_side():
    masks = _draw(RandomMasker(RandomConfig(mask_ratio=0.99)), 2, (1, 3))
    assert masks.targets[0].shape == (2, 2) and masks.context[0].shape == (2, 1)
    with pytest.raises(MaskingError, match="at least 2 patches"):
        _draw(RandomMasker(RandomConfig()), 2, (1, 1))


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5])
def test_random_rejects_ratios_outside_zero_one(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        RandomConfig(mask_ratio=ratio)


# -- block -------------------------------------------------------------------------------------


def test_block_is_one_rectangle_of_scale_point_six_and_its_complement():
    masks = _draw(BlockMasker(BlockConfig()), 8, (14, 14))
    t = masks.targets[0]
    assert len(masks.targets) == 1
    assert abs(t.shape[1] - 0.6 * 196) <= 12  # sides rounded
    rows, cols = t // 14, t % 14
    h = rows.max(1).values - rows.min(1).values + 1
    w = cols.max(1).values - cols.min(1).values + 1
    assert bool((h * w == t.shape[1]).all())
    _partition(type(masks)(context=[masks.context[0][:1]], targets=[t[:1]]), 196)


def test_block_centre_is_never_context():
    """A block wider than half the grid always covers the middle: documented, and
    declared to the conformance kit."""
    masker = BlockMasker(BlockConfig())
    g = torch.Generator().manual_seed(0)
    seen = torch.zeros(196, dtype=torch.bool)
    for _ in range(50):
        seen |= to_bool(masker(32, (14, 14), g).context[0], 196).any(0)
    assert not seen.view(14, 14)[7, 7]
    assert seen.view(14, 14)[0, 0] and seen.view(14, 14)[13, 13]
    assert masker.conformance["context_reachable"] is False


def test_block_leaves_a_context_patch_at_full_scale():
    masks = _draw(BlockMasker(BlockConfig(target_scale=(1.0, 1.0), target_aspect=(1.0, 1.0))), 3,
                  (4, 4))
    assert masks.context[0].shape == (3, 4) and masks.targets[0].shape == (3, 12)


def test_block_rejects_bad_scales():
    with pytest.raises(ValueError, match="target_scale"):
        BlockConfig(target_scale=(0.7, 0.6))
    with pytest.raises(ValueError, match="target_scale: at most 1.0"):
        BlockConfig(target_scale=(0.6, 1.2))


# -- rasterized --------------------------------------------------------------------------------


def test_quadrants_split_the_grid():
    q = quadrants((4, 6))
    assert q.shape == (4, 24) and bool((q.sum(0) == 1).all())
    assert q[0].view(4, 6)[:2, :3].all() and q[3].view(4, 6)[2:, 3:].all()


def test_rasterized_context_is_one_quadrant_targets_the_others():
    masks = _draw(RasterizedMasker(RasterizedConfig()), 32, (14, 14))
    assert len(masks.targets) == 3
    quads = quadrants((14, 14))
    for b in range(32):
        sets = [to_bool(m[b:b + 1], 196)[0] for m in (*masks.context, *masks.targets)]
        ids = [int(torch.nonzero((quads == s).all(1))[0]) for s in sets]  # each a whole quadrant
        assert sorted(ids) == [0, 1, 2, 3]
    first = masks.context[0][:, 0]
    assert len(set(first.tolist())) > 1  # the context quadrant varies


def test_rasterized_odd_grid_equal_lengths():
    masks = _draw(RasterizedMasker(RasterizedConfig(num_targets=2)), 16, (7, 9))
    assert len(masks.targets) == 2
    assert all(m.shape[0] == 16 for m in (*masks.context, *masks.targets))
    assert masks.context[0].shape[1] == 3 * 4  # the smallest quadrant


def test_rasterized_rejects_thin_grids_and_bad_counts():
    with pytest.raises(MaskingError, match="at least 2x2"):
        _draw(RasterizedMasker(RasterizedConfig()), 2, (1, 8))
    with pytest.raises(ValueError):
        RasterizedConfig(num_targets=4)


# -- blockwise ---------------------------------------------------------------------------------


def test_blockwise_masks_exactly_the_ratio():
    masks = _draw(BlockwiseMasker(BlockwiseConfig()), 16, (14, 14))
    k = round(0.4 * 196)
    assert masks.targets[0].shape == (16, k) and masks.context[0].shape == (16, 196 - k)
    _partition(type(masks)(context=[masks.context[0][:1]], targets=[masks.targets[0][:1]]), 196)


def _neighbour_fraction(mask: torch.Tensor, grid: tuple[int, int]) -> float:
    """Mean fraction of a masked patch's 4-neighbours that are masked too."""
    m = mask.view(-1, *grid).float()
    padded = torch.nn.functional.pad(m, (1, 1, 1, 1))
    around = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    inside = torch.nn.functional.pad(torch.ones_like(m), (1, 1, 1, 1))
    degree = inside[:, :-2, 1:-1] + inside[:, 2:, 1:-1] + inside[:, 1:-1, :-2] + inside[:, 1:-1, 2:]
    return float((around / degree)[m.bool()].mean())


def test_blockwise_targets_are_clustered_unlike_random():
    grid = (14, 14)
    blockwise = to_bool(_draw(BlockwiseMasker(BlockwiseConfig()), 64, grid).targets[0], 196)
    random = to_bool(_draw(RandomMasker(RandomConfig(mask_ratio=0.4)), 64, grid).targets[0], 196)
    assert _neighbour_fraction(blockwise, grid) > 0.7
    assert _neighbour_fraction(random, grid) < 0.5


def test_blockwise_fills_when_blocks_cannot_reach_the_ratio():
    masker = BlockwiseMasker(BlockwiseConfig(mask_ratio=0.9, max_rounds=1, min_block_patches=1,
                                             max_block_patches=1))
    masks = _draw(masker, 4, (6, 6))
    assert masks.targets[0].shape == (4, round(0.9 * 36))


def test_blockwise_rejects_bad_params():
    with pytest.raises(ValueError, match="aspect"):
        BlockwiseConfig(aspect=(2.0, 1.0))
    with pytest.raises(ValueError, match="mask_ratio"):
        BlockwiseConfig(mask_ratio=1.0)


# -- registration ------------------------------------------------------------------------------


def test_registered_by_name_through_the_entry_point(registry):
    for name in ("random", "block", "rasterized", "blockwise"):
        component = registry.get("masker", name)
        assert component.provider.startswith("masks (jepakit ")
    masker = registry.create("masker", "random", {"mask_ratio": 0.75})
    assert masker.config.mask_ratio == 0.75
    with pytest.raises(ConfigError, match="masker.params: mask_ratio: expected a fraction"):
        registry.create("masker", "random", {"mask_ratio": 2})
