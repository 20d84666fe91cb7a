"""Image datasets given ``num_frames`` return still clips [C, T, H, W]."""

from __future__ import annotations

import pickle

import pytest
import torch
from jepakit_data.still_clips import StillClipDecoder, StillClips, still
from shardkit import clean_tally, image_folder, labelled_shards  # noqa: F401 (clean_tally: autouse fixture)

from jepakit.data.loader import collate
from jepakit.data.views import ViewGroup
from jepakit.errors import ConfigError


def assert_still(clip: torch.Tensor, chans: int, frames: int, size: int) -> None:
    assert clip.shape == (chans, frames, size, size)
    assert all(torch.equal(clip[:, 0], clip[:, t]) for t in range(frames))


def test_still_repeats_an_image_and_each_view():
    image = torch.randn(3, 4, 5)
    clip = still(image, 3)
    assert clip.shape == (3, 3, 4, 5) and torch.equal(clip[:, 2], image)
    views = still([image, image[:, :2, :2]], 2)
    assert [v.shape for v in views] == [(3, 2, 4, 5), (3, 2, 2, 2)]
    with pytest.raises(TypeError, match="C, H, W"):
        still(torch.zeros(1, 2, 3, 4), 2)


def test_synthetic_gives_still_clips_and_a_clip_batch(registry):
    plain = registry.create("dataset", "synthetic", {"num_samples": 6}, image_size=8, seed=0)
    clips = registry.create("dataset", "synthetic", {"num_samples": 6}, image_size=8, seed=0,
                            num_frames=4)
    clip, label = clips[2]
    assert_still(clip, 3, 4, 8)
    assert torch.equal(clip[:, 0], plain[2][0]) and label == plain[2][1]
    assert collate([clips[i] for i in range(3)]).images.shape == (3, 3, 4, 8, 8)
    held = clips.held_out(2)
    assert isinstance(held, StillClips) and held[0][0].shape == (3, 4, 8, 8)
    assert clips.classes == plain.classes


def test_synthetic_views_become_still_clips_and_keep_their_state(registry):
    views = [ViewGroup(size=8, count=2, augment=[]), ViewGroup(size=4, crop_scale=(0.1, 0.3))]
    ds = registry.create("dataset", "synthetic", {"num_samples": 4}, image_size=8, seed=0,
                         views=views, num_frames=2)
    clips, _ = ds[0]
    assert [c.shape for c in clips] == [(3, 2, 8, 8)] * 2 + [(3, 2, 4, 4)]
    assert ds.state_dict() == {"produced": 1}  # the view dataset's position shows through
    batch = collate([ds[1], ds[2]])
    assert batch.views is not None and batch.views[2].shape == (2, 3, 2, 4, 4)


def test_webdataset_and_imagefolder_give_still_clips(registry, tmp_path):
    shards = labelled_shards(tmp_path / "wds")
    ds = registry.create("dataset", "webdataset", {"urls": str(shards / "index.json")},
                         image_size=8, in_chans=3, seed=0, num_frames=3)
    samples = list(ds)
    assert len(samples) == 12
    for clip, _ in samples:
        assert_still(clip, 3, 3, 8)
    folder = image_folder(tmp_path / "folder", per_class=2)
    ds = registry.create("dataset", "imagefolder", {"root": str(folder)}, image_size=6,
                         in_chans=1, seed=0, num_frames=2)
    samples = list(ds)
    assert len(samples) == 6 and {label for _, label in samples} == {0, 1, 2}
    for clip, _ in samples:
        assert_still(clip, 1, 2, 6)
    decoder = pickle.loads(pickle.dumps(ds.decode))  # crosses to loader workers
    assert isinstance(decoder, StillClipDecoder) and decoder.num_frames == 2


def test_without_num_frames_images_stay_images(registry):
    ds = registry.create("dataset", "synthetic", {"num_samples": 2}, image_size=8, seed=0)
    assert ds[0][0].shape == (3, 8, 8)
    with pytest.raises(ConfigError, match="num_frames"):
        registry.create("dataset", "synthetic", {"num_samples": 2}, image_size=8, num_frames=0)
