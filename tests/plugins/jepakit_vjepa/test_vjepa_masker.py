"""V-JEPA's 3-D multi-block masker: what it draws, beyond the invariants the conformance
kit checks for every masker (tests/plugins/jepakit_masks/test_masks_conformance.py runs
the kit on it, on image and video grids)."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jepakit_vjepa.masker import (
    MaskConfiguration,
    VJEPAMultiBlockConfig,
    VJEPAMultiBlockMasker,
    _positions,
    _union,
    box_size,
    configuration_masks,
    equal_lengths,
    subsample,
)

from jepakit.errors import ConfigError
from jepakit.masking import MaskingError, box_masks, first_k, grid_size
from jepakit.registry import Registry
from jepakit.testing import ConformanceError, Expectations, check_masks, expectations

GRID = (8, 16, 16)  # 16 frames in tubelets of 2 at 256 px with 16-pixel patches


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_defaults_are_v_jepa_2s_two_configurations():
    cfg = VJEPAMultiBlockConfig()
    assert [(c.num_blocks, c.spatial_scale) for c in cfg.configurations] == [
        (8, (0.15, 0.15)), (2, (0.7, 0.7))]
    for c in cfg.configurations:
        assert c.temporal_scale == (1.0, 1.0) and c.aspect_ratio == (0.75, 1.5)
    masker = VJEPAMultiBlockMasker(cfg)
    assert masker.pairing == "zip" and expectations(masker).grid_ranks == (2, 3)
    masks = masker(4, GRID, _gen())
    assert len(masks.context) == len(masks.targets) == 2


@pytest.mark.parametrize("scale", [0.15, 0.7])
def test_block_sizes_follow_the_spatial_and_temporal_scale(scale):
    conf = MaskConfiguration(num_blocks=1, spatial_scale=(scale, scale))
    for seed in range(20):
        frames, h, w = box_size(GRID, conf, _gen(seed))
        assert frames == GRID[0]  # temporal scale 1: the whole clip
        assert abs(h * w - scale * 256) <= (h + w) / 2 + 1
        assert 0.75 - 0.2 <= h / w <= 1.5 + 0.2
    half = MaskConfiguration(num_blocks=1, temporal_scale=(0.5, 0.5))
    assert box_size(GRID, half, _gen())[0] == 4


def test_target_is_the_union_of_boxes_spanning_the_clip_and_context_its_complement():
    conf = MaskConfiguration(num_blocks=8, spatial_scale=(0.15, 0.15))
    context, target = configuration_masks(conf, 16, GRID, 1, 20, _gen(3))
    assert torch.equal(context, ~target)
    frames = target.view(16, *GRID)
    assert torch.equal(frames, frames[:, :1].expand_as(frames))  # every frame alike
    frame_h, frame_w = box_size(GRID, conf, _gen(3))[1:]
    covered = frames[:, 0].flatten(1).sum(dim=1)
    assert bool((covered >= frame_h * frame_w).all())
    assert bool((covered <= 8 * frame_h * frame_w).all())
    assert bool((covered < 256).all())  # some context left in every clip


def test_short_blocks_stay_within_their_frames():
    conf = MaskConfiguration(num_blocks=1, spatial_scale=(0.25, 0.25), temporal_scale=(0.5, 0.5))
    _, target = configuration_masks(conf, 32, GRID, 1, 20, _gen(1))
    per_frame = target.view(32, GRID[0], -1).any(dim=2)
    assert bool((per_frame.sum(dim=1) == 4).all())
    first = per_frame.float().argmax(dim=1)
    runs = torch.stack([per_frame[b, int(first[b]):int(first[b]) + 4].all() for b in range(32)])
    assert bool(runs.all())  # four consecutive frames
    assert len(set(first.tolist())) > 1  # at different times in different clips


def test_lengths_equal_the_batch_minimum():
    masker = VJEPAMultiBlockMasker(VJEPAMultiBlockConfig(lengths="truncate"))
    masks = masker(8, GRID, _gen(5))
    g = _gen(5)
    for c, conf in enumerate(masker.config.configurations):
        context, target = configuration_masks(conf, 8, GRID, 1, 20, g, c)
        assert masks.context[c].shape[1] == int(context.sum(dim=1).min())
        assert masks.targets[c].shape[1] == int(target.sum(dim=1).min())
        assert torch.equal(masks.context[c], first_k(context, masks.context[c].shape[1]))
        assert torch.equal(masks.targets[c], first_k(target, masks.targets[c].shape[1]))


def test_subsample_draws_each_member_equally_often():
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0, :10] = True
    mask[1, 5:25] = True
    g = _gen(0)
    hits = torch.zeros(2, 40)
    for _ in range(2000):
        keys = torch.rand(mask.shape, generator=g, dtype=torch.float64).numpy()
        idx = subsample(mask, 5, keys)
        assert bool((idx[:, 1:] > idx[:, :-1]).all())  # raster order
        hits.scatter_add_(1, idx, torch.ones(2, 5))
    freq = hits / 2000
    assert bool((freq[~mask] == 0).all())
    assert torch.allclose(freq[0, :10], torch.full((10,), 0.5), atol=0.05)
    assert torch.allclose(freq[1, 5:25], torch.full((20,), 0.25), atol=0.05)


def test_equal_counts_draw_nothing():
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[:, 2:6] = True
    g = _gen(0)
    before = g.get_state()
    (idx,) = equal_lengths([mask], "subsample", g)
    assert torch.equal(g.get_state(), before)
    assert torch.equal(idx, torch.arange(2, 6).repeat(3, 1))


def test_an_image_grid_is_a_one_frame_clip():
    masker = VJEPAMultiBlockMasker(VJEPAMultiBlockConfig())
    image, clip = masker(4, (14, 14), _gen(2)), masker(4, (1, 14, 14), _gen(2))
    for a, b in zip(image.context + image.targets, clip.context + clip.targets, strict=True):
        assert torch.equal(a, b)


def test_pairs_are_disjoint_but_a_context_meets_other_targets():
    """Why the kit checks this masker with pairing 'zip': as 'all' it would fail."""
    masker = VJEPAMultiBlockMasker(VJEPAMultiBlockConfig())
    masks = masker(8, GRID, _gen(0))
    check_masks(masks, 8, GRID, expectations(masker))
    with pytest.raises(ConformanceError, match="overlap"):
        check_masks(masks, 8, GRID, Expectations(pairing="all"))


def test_deterministic_and_pickles():
    masker = VJEPAMultiBlockMasker(VJEPAMultiBlockConfig())
    copy = pickle.loads(pickle.dumps(masker))
    a, b = masker(4, GRID, _gen(9)), copy(4, GRID, _gen(9))
    for x, y in zip(a.context + a.targets, b.context + b.targets, strict=True):
        assert torch.equal(x, y)
    c = masker(4, GRID, _gen(10))
    assert not torch.equal(a.context[0], c.context[0]) or not torch.equal(a.targets[0],
                                                                           c.targets[0])


def test_blocks_covering_every_frame_are_a_one_line_error():
    full = VJEPAMultiBlockConfig(configurations=[
        MaskConfiguration(num_blocks=1, spatial_scale=(0.15, 0.15)),
        MaskConfiguration(num_blocks=1, spatial_scale=(1.0, 1.0))])
    with pytest.raises(MaskingError) as info:
        VJEPAMultiBlockMasker(full)(2, GRID, _gen())
    message = str(info.value)
    assert "\n" not in message
    assert "configuration 1 (1 blocks of 8x16x16)" in message and "min_keep=1" in message


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"configurations": []}, "needs at least one mask configuration"),
        ({"configurations": [{"spatial_scale": [0.0, 0.2]}]}, "spatial_scale: expected 0 < low"),
        ({"configurations": [{"temporal_scale": [0.5, 1.5]}]}, "temporal_scale"),
        ({"configurations": [{"num_blok": 3}]}, "did you mean 'num_blocks'"),
        ({"lengths": "cut"}, "lengths"),
    ],
)
def test_bad_params_are_one_line_config_errors(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        Registry().create("masker", "vjepa_multiblock", params, path="masker.params")
    assert "\n" not in str(info.value)


def test_registered_with_an_example():
    component = Registry().get("masker", "vjepa_multiblock")
    masker = Registry().create("masker", "vjepa_multiblock", dict(component.example))
    masks = masker(2, (2, 6, 6), _gen())
    assert len(masks.context) == len(component.example["configurations"])
    assert all(int(t.max()) < grid_size((2, 6, 6)) for t in masks.targets)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(grid=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)),
       blocks=st.integers(1, 4), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_union_by_matmul_equals_the_union_of_boxes(grid, blocks, seed, data):
    size = tuple(data.draw(st.integers(1, g)) for g in grid)
    starts = _positions(3, blocks, grid, size, _gen(seed))
    expected = box_masks(grid, starts, size).any(dim=1)
    assert torch.equal(_union(grid, starts, size), expected)
    naive = torch.zeros(3, *grid, dtype=torch.bool)
    for b in range(3):
        for k in range(blocks):
            t, r, c = (int(s[b, k]) for s in starts)
            naive[b, t:t + size[0], r:r + size[1], c:c + size[2]] = True
    assert torch.equal(expected, naive.flatten(1))


def test_length_buckets_cut_every_batch_to_its_configurations_levels():
    config = VJEPAMultiBlockConfig(length_buckets=2)
    masker = VJEPAMultiBlockMasker(config)
    grid, batch = (4, 8, 8), 8
    levels = masker.length_levels(grid, batch)
    assert levels is not None and len(levels.context) == len(config.configurations) == 2
    assert all(1 <= len(c) <= 2 for c in levels.context + levels.targets)
    plain = VJEPAMultiBlockMasker(VJEPAMultiBlockConfig())
    g, seen, unbucketed = _gen(3), set(), set()
    for step in range(120):
        masks = masker(batch, grid, g)
        check_masks(masks, batch, grid, expectations(masker))
        for c in range(2):
            k_ctx, k_tgt = masks.context[c].shape[1], masks.targets[c].shape[1]
            assert k_ctx in levels.context[c] and k_tgt in levels.targets[c], (c, k_ctx, k_tgt)
            seen.add((c, k_ctx, k_tgt))
        drawn = plain(batch, grid, _gen(step))
        unbucketed |= {(c, m.shape[1]) for c, m in enumerate(drawn.context)}
    assert len(seen) <= levels.count < len(unbucketed)  # fewer shapes than without buckets
    assert masker.length_levels(grid, batch) is levels  # chosen once
    assert VJEPAMultiBlockMasker(VJEPAMultiBlockConfig()).length_levels(grid, batch) is None


def test_bucketed_masks_pass_the_conformance_kit():
    from jepakit_vjepa import SMALL_MASKS

    from jepakit.testing import check_masker

    check_masker(Registry(), "vjepa_multiblock", {**SMALL_MASKS, "length_buckets": 2},
                 max_examples=10, grid_ranks=(3,))
