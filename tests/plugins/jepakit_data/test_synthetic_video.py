"""Procedural clips: shape, determinism, motion, bounce, the frames context."""

from __future__ import annotations

import colorsys

import pytest
import torch
from jepakit_data.synthetic import NUM_CLASSES, class_parts
from jepakit_data.synthetic_video import (
    SyntheticVideo,
    SyntheticVideoConfig,
    bounce,
    make_synthetic_video,
)

from jepakit.errors import ConfigError


def clips(n: int = 20, seed: int = 0, **params) -> SyntheticVideo:
    return make_synthetic_video(SyntheticVideoConfig(num_samples=n, **params), image_size=16,
                                in_chans=3, seed=seed, num_frames=8)


def test_clip_shape_dtype_and_label():
    clip, label = clips()[3]
    assert clip.shape == (3, 8, 16, 16) and clip.dtype == torch.float32
    assert 0 <= label < NUM_CLASSES and torch.isfinite(clip).all()


def test_deterministic_per_seed_and_index():
    a, b, c = clips(seed=3), clips(seed=3), clips(seed=4)
    assert torch.equal(a[5][0], b[5][0]) and a[5][1] == b[5][1]
    assert not torch.equal(a[5][0], a[6][0])
    assert not torch.equal(a[5][0], c[5][0])


def test_objects_move_and_keep_the_class_hue():
    """Without noise, most consecutive frames differ (the objects glide; a bounce can
    return one to where it was) and every frame holds the class's hue."""
    ds = clips(n=30, noise=0.0, speed=(0.3, 0.3))  # 2.4 px per frame
    for i in range(30):
        clip, label = ds[i]
        assert sum(not torch.equal(clip[:, t], clip[:, t + 1]) for t in range(7)) >= 5
        for t in range(8):
            rgb = ((clip[:, t] + 1) / 2).clamp(0, 1).reshape(3, -1).T
            hues = {round(colorsys.rgb_to_hsv(*p.tolist())[0] * NUM_CLASSES) % NUM_CLASSES
                    for p in rgb}
            assert class_parts(label)[2] * NUM_CLASSES in hues


def test_still_objects_give_still_frames():
    clip, _ = clips(noise=0.0, speed=(0.0, 0.0))[0]
    assert torch.equal(clip[:, 0], clip[:, -1])


def test_bounce_reflects_at_the_walls():
    path = bounce(torch.tensor(0.7), 0.1, 5, limit=0.8)
    assert torch.allclose(path, torch.tensor([0.7, 0.8, 0.7, 0.6, 0.5]), atol=1e-6)
    back = bounce(torch.tensor(-0.7), -0.2, 4, limit=0.8)
    assert torch.allclose(back, torch.tensor([-0.7, -0.7, -0.5, -0.3]), atol=1e-6)
    assert bounce(torch.tensor(0.0), 0.37, 200).abs().max() <= 0.8 + 1e-6


def test_held_out_clips_are_new_and_deterministic():
    ds = clips(n=10, seed=1)
    held = ds.held_out(5)
    assert len(held) == 5 and torch.equal(held[2][0], ds.held_out(5)[2][0])
    assert not any(torch.equal(held[j][0], ds[i][0]) for j in range(5) for i in range(10))


def test_frames_come_from_the_encoder_or_the_config_and_must_agree():
    config = SyntheticVideoConfig(num_samples=2, frames_per_clip=4)
    assert make_synthetic_video(config, image_size=8)[0][0].shape == (3, 4, 8, 8)
    assert make_synthetic_video(config, image_size=8, num_frames=4)[0][0].shape[1] == 4
    with pytest.raises(ConfigError, match="frames_per_clip=4.*num_frames=8"):
        make_synthetic_video(config, image_size=8, num_frames=8)
    with pytest.raises(ConfigError, match="views"):
        make_synthetic_video(config, image_size=8, views=[object()])
    with pytest.raises(ValueError, match="speed"):
        SyntheticVideoConfig(speed=(0.2, 0.1))


def test_registered_factory(registry):
    ds = registry.create("dataset", "synthetic_video", {"num_samples": 4}, image_size=8,
                         in_chans=1, seed=0, num_frames=2)
    assert len(ds) == 4 and ds[0][0].shape == (1, 2, 8, 8)
