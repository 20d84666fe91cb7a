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


def test_noise_free_images_are_two_toned_or_gradient():
    ds = SyntheticImages(SyntheticConfig(num_samples=200, noise=0.0), image_size=16)
    labels = set()
    for i in range(200):
        image, label = ds[i]
        labels.add(label)
        if CLASSES[label] != "gradient":
            assert image[0].unique().numel() <= 2
    assert labels == set(range(len(CLASSES)))


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
