"""Data sources with views: shapes, today's behaviour without views, determinism for a
seed, and exact resume mid-epoch through loader workers (map-style and streamed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from jepakit_data.synthetic import SyntheticConfig, SyntheticImages
from shardkit import clean_tally, image_folder, labelled_shards  # noqa: F401 (clean_tally: autouse fixture)

import jepakit
from jepakit.data.decode import ImageDecoder
from jepakit.data.loader import Batch, Epochs, build_loader
from jepakit.data.views import ViewGroup
from jepakit.errors import ConfigError
from jepakit.recipe import load_recipe

GROUPS = [ViewGroup(size=12, count=2, crop_scale=(0.3, 1.0)),
          ViewGroup(size=6, count=3, crop_scale=(0.05, 0.3), augment=["flip", "blur"])]
SHAPES = [(12, 12)] * 2 + [(6, 6)] * 3


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """12 labelled images (3 classes) in 6 shards of 2."""
    return labelled_shards(tmp_path_factory.mktemp("wds_views")) / "index.json"


def synthetic(registry, seed: int = 0, views=GROUPS, num_samples: int = 12):
    return registry.create("dataset", "synthetic", {"num_samples": num_samples}, image_size=16,
                           in_chans=3, seed=seed, views=views)


def webdataset(registry, shards: Path, seed: int = 0, views=GROUPS):
    return registry.create("dataset", "webdataset", {"urls": str(shards), "mode": "exact",
                                                     "shuffle_buffer": 3},
                           image_size=16, in_chans=3, seed=seed, views=views)


def test_without_views_the_sources_are_unchanged(registry, shards, tmp_path):
    plain = synthetic(registry, views=None)
    assert type(plain) is SyntheticImages
    direct = SyntheticImages(SyntheticConfig(num_samples=12), image_size=16, seed=0)
    assert all(torch.equal(plain[i][0], direct[i][0]) for i in range(12))
    assert type(webdataset(registry, shards, views=None).decode) is ImageDecoder
    image_folder(tmp_path / "folder", per_class=1)
    folder = registry.create("dataset", "imagefolder", {"root": str(tmp_path / "folder")},
                             image_size=16, in_chans=3, seed=0)
    assert type(folder.decode) is ImageDecoder


@pytest.mark.parametrize("source", ["synthetic", "webdataset", "imagefolder"])
def test_every_source_yields_views_as_configured(registry, shards, tmp_path, source):
    if source == "synthetic":
        sample = synthetic(registry)[0]
    elif source == "webdataset":
        sample = next(iter(webdataset(registry, shards)))
    else:
        image_folder(tmp_path / "folder", per_class=1)
        sample = next(iter(registry.create("dataset", "imagefolder",
                                           {"root": str(tmp_path / "folder")}, image_size=16,
                                           in_chans=1, seed=0, views=GROUPS)))
    views, label = sample
    channels = 1 if source == "imagefolder" else 3
    assert [tuple(v.shape) for v in views] == [(channels, *s) for s in SHAPES]
    assert isinstance(label, int)


def test_synthetic_views_come_from_the_rendered_image_on_its_scale(registry):
    """Crops of the whole image with no augmentation give the rendering back: the
    [0, 1] mapping for the photometric steps is undone by the normalisation."""
    full = [ViewGroup(size=16, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), augment=[])]
    views, label = synthetic(registry, views=full)[3]
    image, same_label = SyntheticImages(SyntheticConfig(num_samples=12), image_size=16)[3]
    torch.testing.assert_close(views[0], image)
    assert label == same_label


def test_a_map_style_sample_gets_new_views_each_time_it_is_drawn(registry):
    ds = synthetic(registry)
    first, again = ds[5][0], ds[5][0]
    assert not any(torch.equal(a, b) for a, b in zip(first, again))


def batches(epochs: Epochs, count: int) -> list[Batch]:
    return [next(epochs) for _ in range(count)]


def assert_same(got: list[Batch], expected: list[Batch]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.views is not None and b.views is not None
        assert torch.equal(a.labels, b.labels)
        assert all(torch.equal(x, y) for x, y in zip(a.views, b.views))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "webdataset"])
def test_exact_resume_mid_epoch_with_views_and_workers(registry, shards, source):
    """Two epochs through two workers; a run stopped after 4 batches (mid-epoch 2) and
    resumed from its state gives the same batches, views included, as one that ran on."""

    def run(seed: int = 0) -> Epochs:
        ds = synthetic(registry, seed) if source == "synthetic" else webdataset(registry, shards,
                                                                                seed)
        return Epochs(build_loader(ds, batch_size=2, num_workers=2, seed=seed))

    per_epoch = 6  # 12 samples in batches of 2
    full = batches(run(), per_epoch + 3)
    first = run()
    head = batches(first, 4)
    state = first.state_dict()
    second = run()
    second.load_state_dict(state)
    assert_same(head + batches(second, per_epoch - 1), full)
    # determinism is per seed: another seed crops differently
    other = batches(run(seed=1), 1)[0]
    assert not torch.equal(other.views[0], full[0].views[0])


def recipe_with_views(repo_root: Path, tmp_path: Path, views: list[dict]) -> Path:
    data = yaml.safe_load((repo_root / "recipes" / "ijepa_tiny.yaml").read_text())
    path = tmp_path / "views.yaml"
    path.write_text(yaml.safe_dump({**data, "views": views}))
    return path


def test_a_recipe_views_section_reaches_the_batches(repo_root, tmp_path, registry):
    """The engine passes ``views:`` to the data source; an I-JEPA step trains on the
    first view (``Batch.images``)."""
    recipe = recipe_with_views(repo_root, tmp_path, [
        {"size": 32, "count": 2}, {"size": 16, "count": 3, "crop_scale": [0.05, 0.3]}])
    tiny = ["encoder.params.depth=1", "predictor.params.depth=1", "train.batch_size=4",
            "data.params.num_samples=8", "train.device=cpu", "train.steps=2",
            "logging.progress=false"]
    trainer = jepakit.build(recipe, tiny, registry=registry, write_files=False)
    batch = next(trainer.batches)
    assert batch.views is not None
    assert [tuple(v.shape) for v in batch.views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 3
    assert torch.isfinite(trainer.train_step(batch.to(trainer.device)))


def test_an_unknown_augmentation_in_a_recipe_is_one_line_naming_the_key(repo_root, tmp_path,
                                                                        registry):
    recipe = recipe_with_views(repo_root, tmp_path, [
        {"size": 32, "count": 2}, {"size": 16, "augment": ["flip", "solarise"]}])
    with pytest.raises(ConfigError) as info:
        load_recipe(recipe, registry=registry)
    assert str(info.value).startswith("views[1].augment: unknown augmentation 'solarise' "
                                      "(did you mean 'solarize'?); valid names: flip, ")
