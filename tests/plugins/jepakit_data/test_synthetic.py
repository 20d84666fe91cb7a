"""Procedural images: deterministic, right shape, all classes."""

from __future__ import annotations

import pytest
import torch
from jepakit_data.synthetic import CLASSES, SyntheticConfig, SyntheticImages


def test_item_shape_and_label():
    ds = SyntheticImages(SyntheticConfig(num_samples=20), image_size=24, in_chans=3, seed=0)
    assert len(ds) == 20
    image, label = ds[3]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32
    assert 0 <= label < len(CLASSES)
    assert torch.isfinite(image).all() and image.std() > 0


def test_deterministic_per_seed_and_index():
    a = SyntheticImages(SyntheticConfig(num_samples=10), image_size=16, seed=3)
    b = SyntheticImages(SyntheticConfig(num_samples=10), image_size=16, seed=3)
    c = SyntheticImages(SyntheticConfig(num_samples=10), image_size=16, seed=4)
    assert torch.equal(a[5][0], b[5][0]) and a[5][1] == b[5][1]
    assert not torch.equal(a[5][0], a[6][0])
    assert not torch.equal(a[5][0], c[5][0])


def test_config_image_size_and_channels():
    ds = SyntheticImages(SyntheticConfig(num_samples=2, image_size=12), image_size=32, in_chans=1)
    assert ds[0][0].shape == (1, 12, 12)


def test_noise_free_images_hold_three_palette_hues_and_every_class(registry):
    import colorsys

    from jepakit_data.synthetic import NUM_CLASSES, class_parts

    ds = SyntheticImages(SyntheticConfig(num_samples=300, noise=0.0), image_size=32)
    labels = set()
    for i in range(300):
        image, label = ds[i]
        labels.add(label)
        pixels = ((image + 1) / 2).clamp(0, 1).reshape(3, -1).T
        hues = {round(colorsys.rgb_to_hsv(*p.tolist())[0] * NUM_CLASSES) % NUM_CLASSES
                for p in pixels}
        assert len(hues) == 3 and class_parts(label)[2] * NUM_CLASSES in hues
    assert labels == set(range(NUM_CLASSES))


def test_objects_are_the_smallest_hue_and_go_anywhere():
    """The class's hue covers less of the image than the background's two, and its
    objects cover every part of the image (but the very border) over many images."""
    import colorsys

    from jepakit_data.synthetic import NUM_CLASSES, class_parts

    ds = SyntheticImages(SyntheticConfig(num_samples=400, noise=0.0), image_size=16)
    coverage = torch.zeros(16, 16)
    for i in range(400):
        image, label = ds[i]
        rgb = ((image + 1) / 2).clamp(0, 1)
        hue = torch.tensor([[colorsys.rgb_to_hsv(*rgb[:, y, x].tolist())[0]
                             for x in range(16)] for y in range(16)])
        mine = ((hue * NUM_CLASSES).round() % NUM_CLASSES) == class_parts(label)[2] * NUM_CLASSES
        assert mine.float().mean() < 0.5
        coverage += mine.float()
    inner = coverage[2:-2, 2:-2]  # object centres stay 10% in from the border
    assert bool((inner > 0).all())
    assert float(inner.max() / inner.mean()) < 3


def test_held_out_images_are_new_and_deterministic():
    ds = SyntheticImages(SyntheticConfig(num_samples=50), image_size=16, seed=1)
    held = ds.held_out(20)
    assert len(held) == 20 and torch.equal(held[3][0], ds.held_out(20)[3][0])
    seen = [ds[i][0] for i in range(50)]
    assert not any(torch.equal(held[j][0], s) for j in range(20) for s in seen)


def test_scale_multiplies_the_pixels():
    a = SyntheticImages(SyntheticConfig(num_samples=2), image_size=16)
    b = SyntheticImages(SyntheticConfig(num_samples=2, scale=10), image_size=16)
    assert torch.allclose(a[1][0] * 10, b[1][0], atol=1e-5)
    with pytest.raises(ValueError, match="objects"):
        SyntheticConfig(objects=(3, 2))


def test_index_out_of_range():
    ds = SyntheticImages(SyntheticConfig(num_samples=3))
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(IndexError):
        ds[-1]


def test_registered_factory(registry):
    ds = registry.create("dataset", "synthetic", {"num_samples": 4}, image_size=8, in_chans=3,
                         seed=0)
    assert len(ds) == 4 and ds[0][0].shape == (3, 8, 8)
