"""Token grids of any rank: the mask stream keeps every dimension and refuses, before
training, a masker that does not declare the grid's rank; the N-D box helper."""

from __future__ import annotations

import pytest
import torch

from jepakit.data.loader import MaskStream
from jepakit.masking import (
    MaskingError,
    box_masks,
    check_grid,
    grid_ranks,
    grid_size,
    rect_masks,
    require_rank,
)
from jepakit.registry import Registry


@pytest.fixture(scope="module")
def maskers():
    registry = Registry()
    return {name: registry.create("masker", name) for name in ("multiblock", "vjepa_multiblock")}


def test_mask_stream_keeps_a_video_grid(maskers):
    stream = MaskStream(maskers["vjepa_multiblock"], [4, 8, 8], seed=0)
    assert stream.patch_grid == (4, 8, 8)
    masks = stream(2, step=3)
    assert max(int(t.max()) for t in masks.context + masks.targets) < 4 * 8 * 8
    again = MaskStream(maskers["vjepa_multiblock"], (4, 8, 8), seed=0)(2, step=3)
    assert all(torch.equal(a, b) for a, b in zip(masks.targets, again.targets, strict=True))


def test_mask_stream_refuses_an_image_masker_on_a_video_grid(maskers):
    with pytest.raises(MaskingError, match="MultiBlockMasker works on 2-D patch grids, got the "
                                           "3-D grid 4x8x8"):
        MaskStream(maskers["multiblock"], (4, 8, 8), seed=0)
    assert MaskStream(maskers["multiblock"], (8, 8), seed=0).patch_grid == (8, 8)


def test_undeclared_maskers_are_image_only():
    class Plain:
        def __call__(self, batch, grid, g):
            raise AssertionError("not called")

    assert grid_ranks(Plain()) == (2,)
    with pytest.raises(MaskingError, match=r"declares conformance=\{'grid_ranks': \(2, 3\)\}"):
        require_rank(Plain(), (2, 4, 4), "plain")


def test_check_grid_names_the_masker_and_the_grid():
    with pytest.raises(MaskingError, match="blockwise needs a 2-D patch grid .* 3-D grid 2x4x4"):
        check_grid((2, 4, 4), "blockwise")
    with pytest.raises(ValueError, match="positive"):
        check_grid((0, 4))


def test_box_masks_equal_rect_masks_on_images_and_cover_boxes_on_video():
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 3, (5, 2), generator=g), torch.randint(0, 4, (5, 2), generator=g)
    assert torch.equal(box_masks((6, 7), [top, left], [3, 2]), rect_masks((6, 7), top, left, 3, 2))
    start = [torch.tensor([1]), torch.tensor([0]), torch.tensor([2])]
    box = box_masks((3, 4, 5), start, [2, torch.tensor([3]), 2]).view(3, 4, 5)
    expected = torch.zeros(3, 4, 5, dtype=torch.bool)
    expected[1:3, 0:3, 2:4] = True
    assert torch.equal(box, expected) and grid_size((3, 4, 5)) == 60
