"""Mask pictures and coverage on video grids (frames, rows, columns): which frames are
drawn, where a patch of a given frame lands, and per-configuration rows for V-JEPA's
paired masks. Image grids are covered through ``jepakit masks show`` (test_masks_cli.py)."""

from __future__ import annotations

import torch

import jepakit
from jepakit.coverage import describe_patches, format_coverage, measure
from jepakit.drawing import _frame_image, draw_coverage, draw_samples, shown_frames
from jepakit.masking import box_masks, to_indices

GREY = (128, 128, 128)
RED = (255, 0, 0)


def test_frames_drawn_are_evenly_spaced_and_under_their_tubelet():
    assert shown_frames(8, 4) == [0, 2, 5, 7]
    assert shown_frames(3, 4) == [0, 1, 2]
    assert shown_frames(5, 1) == [0]
    clip = torch.arange(16.0).view(1, 16, 1, 1).expand(3, 16, 2, 2)
    assert torch.equal(_frame_image(clip, (8, 1, 1), 3), clip[:, 6])  # tubelet of 2
    image = torch.rand(3, 4, 4)
    assert _frame_image(image, (8, 1, 1), 3) is image  # an image is a still clip


def _pixel(sheet, clip, frame, row, *, frames=2, panel=16, head=16):
    """A pixel inside the top-left patch of one panel of a video sheet without a title."""
    margin, label_w, gap = 6, 60, 12
    x = label_w + clip * (frames * (panel + margin) + gap) + frame * (panel + margin) + margin
    y = head + row * (panel + margin) + margin
    return sheet.getpixel((x + 2, y + 2))


def test_a_patch_is_drawn_in_its_own_frame_and_configuration():
    grid = (2, 2, 2)  # patch 0 of frame 1 is index 4
    clips = [torch.tensor([1.0, 0, 0]).view(3, 1, 1, 1).expand(3, 4, 8, 8).clone()]
    clips[0][1] += torch.linspace(0, 1e-3, 8)  # not constant, so the picture stays red
    masks = jepakit.Masks(context=[torch.tensor([[4, 5]]), torch.tensor([[0, 1]])],
                          targets=[torch.tensor([[0, 1]]), torch.tensor([[4, 5]])])
    sheet = draw_samples(clips, masks, grid, panel=16, pairing="zip", frames=2)
    assert _pixel(sheet, 0, 0, 0)[0] > 200  # the image row
    assert _pixel(sheet, 0, 0, 1) == GREY and _pixel(sheet, 0, 1, 1)[0] > 200  # context 0
    assert _pixel(sheet, 0, 0, 3)[0] > 200 and _pixel(sheet, 0, 1, 3) == GREY  # context 1
    # target rows: tinted where the target is, dimmed elsewhere
    assert _pixel(sheet, 0, 0, 2) != _pixel(sheet, 0, 1, 2)
    assert _pixel(sheet, 0, 0, 4) != _pixel(sheet, 0, 1, 4)
    rows_all = draw_samples(clips, masks, grid, panel=16, frames=2)
    assert rows_all.height < sheet.height  # image, context, targets only


def test_video_coverage_and_never_covered_patches():
    class CornerTarget:
        """The target is always the top-left patch of every frame."""

        def __call__(self, batch, grid, g):
            t, h, w = grid
            target = box_masks(grid, [torch.zeros(batch, dtype=torch.long)] * 3, (t, 1, 1))
            return jepakit.Masks(context=[to_indices(~target)], targets=[to_indices(target)])

    cov = measure(CornerTarget(), (3, 4, 4), 4, 2)
    assert cov.context.shape == (3, 4, 4) and float(cov.target[:, 0, 0].min()) == 1.0
    lines = format_coverage(cov)
    assert lines[0].startswith("tokens per clip: context 45.0")
    assert lines[-1].startswith("target") and "45: row 1, row 2, row 3, column 1, column 2, " \
        "column 3 in every frame" in lines[-1]
    assert lines[-3].endswith("never covered (frame, row, column)")
    assert lines[-2].startswith("context") and lines[-2].endswith("  3: (0, 0) in every frame")
    assert lines[0].endswith("targets 3.0 in 1 mask(s)")
    picture = draw_coverage(cov, frames=2)
    assert picture.height > 2 * 4 * 32  # two frames of 4 rows one under the other


def test_describe_patches_names_whole_frames_and_cells():
    mask = torch.zeros(3, 2, 2, dtype=torch.bool)
    mask[1] = True
    mask[2, 0, 1] = True
    assert describe_patches(mask) == "5: frame 1, (2, 0, 1)"
    same = torch.zeros(3, 2, 2, dtype=torch.bool)
    same[:, 1, :] = True
    assert describe_patches(same) == "6: row 1 in every frame"
