"""Clip sampling (frame count, step, fps, starts) and one crop and flip for all frames."""

from __future__ import annotations

import random

import pytest
import torch
from jepakit_data.clips import ClipTransform, clip_indices, clip_starts, crop_box, frame_step
from jepakit_data.video_decode import VideoInfo


def info(frames: int, fps: float = 30.0) -> VideoInfo:
    return VideoInfo(frames, fps, 48, 64)


def test_evaluation_clips_are_centred_or_evenly_spread():
    assert clip_indices(info(100), 4, 3, None, 1, None) == [[45, 48, 51, 54]]
    assert clip_indices(info(100), 4, 3, None, 3, None) == [
        [0, 3, 6, 9], [45, 48, 51, 54], [90, 93, 96, 99]]


def test_training_clips_start_anywhere_and_keep_the_step():
    rng = random.Random(0)
    starts = set()
    for _ in range(300):
        (clip,) = clip_indices(info(40), 5, 4, None, 1, rng)
        assert len(clip) == 5 and all(b - a == 4 for a, b in zip(clip, clip[1:]))
        assert 0 <= clip[0] and clip[-1] <= 39
        starts.add(clip[0])
    assert starts == set(range(0, 40 - 17 + 1))  # every start that fits, and none other


def test_a_short_video_repeats_its_last_frame():
    assert clip_indices(info(5), 4, 3, None, 1, None) == [[0, 3, 4, 4]]
    assert clip_indices(info(1), 3, 2, None, 2, random.Random(0)) == [[0, 0, 0], [0, 0, 0]]


def test_target_fps_sets_the_step_from_the_video_rate():
    assert frame_step(info(10, fps=30), 4, 10) == 3
    assert frame_step(info(10, fps=25), 4, 4) == 6  # 6.25 -> 6
    assert frame_step(info(10, fps=2), 4, 4) == 1  # never below 1
    assert frame_step(info(10, fps=0), 4, 10) == 4  # no stated rate: frame_step
    assert frame_step(info(10, fps=30), 4, None) == 4
    assert clip_indices(info(100, fps=24), 3, 1, 8, 1, None) == [[46, 49, 52]]  # step 3


def test_clip_starts_cover_the_video():
    assert clip_starts(10, 20, 3, None) == [0, 0, 0]
    assert clip_starts(21, 1, 3, None) == [0, 10, 20]


def test_crop_boxes_stay_inside_and_respect_scale():
    rng = random.Random(1)
    for _ in range(200):
        h, w = rng.randint(8, 90), rng.randint(8, 90)
        top, left, ch, cw = crop_box(h, w, (0.3, 1.0), (0.75, 1.35), rng)
        assert 0 <= top <= h - ch and 0 <= left <= w - cw and ch > 0 and cw > 0
    assert crop_box(10, 100, (0.9, 1.0), (1.0, 1.0), rng) == (0, 45, 10, 10)  # fallback


def moving_frames(t: int = 6, h: int = 20, w: int = 24) -> torch.Tensor:
    """uint8 [T, H, W, 3]: one textured picture, brighter by 10 each frame."""
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 150, (h, w, 3), generator=g)
    return torch.stack([base + 10 * i for i in range(t)]).to(torch.uint8)


def test_one_crop_for_every_frame_of_a_clip():
    """Frames differ only by a constant, so after the same crop and resize they still do:
    a crop drawn per frame would break that."""
    transform = ClipTransform(8, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), crop_scale=(0.2, 0.5))
    for seed in range(10):
        clip = transform(moving_frames(), random.Random(seed))
        assert clip.shape == (3, 6, 8, 8)
        for t in range(1, 6):
            offset = (10 * t / 255) / 0.25
            assert torch.allclose(clip[:, t] - clip[:, 0], torch.full((3, 8, 8), offset),
                                  atol=1e-4)
    clips = [transform(moving_frames(), random.Random(s)) for s in range(4)]
    assert not all(torch.equal(clips[0], c) for c in clips[1:])  # crops do vary per clip


def test_one_flip_for_every_frame_of_a_clip():
    """With the whole frame kept, a clip is the plain resize or its mirror image, in all
    frames together; both happen."""
    frames = moving_frames(h=16, w=16)
    plain = ClipTransform(16, (0.0,) * 3, (1.0,) * 3)(frames, None)
    transform = ClipTransform(16, (0.0,) * 3, (1.0,) * 3, crop_scale=(1.0, 1.0),
                              crop_ratio=(1.0, 1.0), flip=True)
    seen = set()
    for seed in range(20):
        clip = transform(frames, random.Random(seed))
        if torch.allclose(clip, plain):
            seen.add("plain")
        else:
            assert torch.allclose(clip, plain.flip(-1))
            seen.add("flipped")
    assert seen == {"plain", "flipped"}
    no_flip = ClipTransform(16, (0.0,) * 3, (1.0,) * 3, crop_scale=(1.0, 1.0),
                            crop_ratio=(1.0, 1.0), flip=False)
    assert all(torch.allclose(no_flip(frames, random.Random(s)), plain) for s in range(10))


def test_evaluation_takes_the_centred_square_normalised():
    frames = torch.zeros(2, 10, 14, 1, dtype=torch.uint8)
    frames[:, :, 2:12] = 255  # the centred 10x10 square is white, the sides black
    clip = ClipTransform(5, (0.5,), (0.5,))(frames, None)
    assert clip.shape == (1, 2, 5, 5)
    assert torch.allclose(clip, torch.ones_like(clip))
    with pytest.raises(RuntimeError):  # normalisation for 3 channels on 1-channel frames
        ClipTransform(5, (0.5,) * 3, (0.5,) * 3)(frames, None)
