"""Feature extraction: layers, the layout check, the cache, and every data source."""

from __future__ import annotations

import pytest
import torch
from evalkit import TINY, TINY_ENCODER, flat_folder, idx_folder, train_test_folders
from torch import nn

from jepakit.data.shards import make_shards
from jepakit.errors import JepakitError
from jepakit.eval import features as F
from jepakit.eval.data import UnlabelledError, resolve, resolve_pair
from jepakit.eval.protocols import prepare, run_knn, run_linear, summary_line


@pytest.fixture(scope="module")
def source():
    return F.from_recipe(TINY, TINY_ENCODER)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return train_test_folders(tmp_path_factory.mktemp("labelled"), 12, 6)


def test_last4_slice_is_the_last_layer(source):
    images = torch.randn(3, 3, 16, 16)
    enc = source.encoder
    assert F.has_blocks(enc)
    with torch.no_grad():
        four = F.encode(enc, images, "last4")
        last = F.encode(enc, images, "last")
    assert four.shape == (3, 4 * 32) and last.shape == (3, 32)
    torch.testing.assert_close(four[:, -32:], last, atol=1e-5, rtol=1e-4)
    assert F.encode(None, images).shape == (3, 3 * 16 * 16)  # pixels


class LookAlike(nn.Module):
    """Has the ViT's parts, but its forward is something else: last4 must not be trusted."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit
        self.patch_embed, self.blocks, self.norm = vit.patch_embed, vit.blocks, vit.norm
        self.pos_embed = vit.pos_embed
        self.image_size, self.in_chans, self.embed_dim = vit.image_size, vit.in_chans, vit.embed_dim

    def forward(self, images, keep=None):
        return self.vit(images, keep) * 2 + 1


def test_look_alike_encoder_gets_the_last_layer_only(source, caplog):
    fake = F.FeatureSource(LookAlike(source.encoder), "fake", "fake", 16, 3)
    assert not F.has_blocks(fake.encoder)
    assert F.effective_layers(fake, "last4") == "last"


def test_extraction_is_cached_and_serves_both_layer_choices(source, pair, tmp_path):
    data = resolve(pair / "train")
    first = F.extract(source, data, "last4", batch_size=8, cache_dir=tmp_path, progress=False)
    again = F.extract(source, data, "last4", batch_size=8, cache_dir=tmp_path, progress=False)
    last = F.extract(source, data, "last", batch_size=8, cache_dir=tmp_path, progress=False)
    assert not first.from_cache and again.from_cache and last.from_cache
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    assert torch.equal(last.x, first.x[:, -32:])
    assert first.y.tolist() == [0] * 12 + [1] * 12 and first.classes == ["square", "stripes"]
    assert len(list(tmp_path.glob("*/header.json"))) == 1


def test_probe_and_knn_end_to_end_on_a_folder_pair(source, pair):
    d = prepare(source, pair, layers="last4", batch_size=8, progress=False)
    assert d.test_source is not None and len(d.test.y) == 12
    r = run_linear(source, d, max_iter=30)
    assert r["accuracy"] >= 0.9 and r["layers"] == "last4" and r["feature_dim"] == 128
    assert "top-1" in summary_line(r)
    k = run_knn(source, d, k=3)
    assert k["accuracy"] >= 0.9
    shots = prepare(source, pair, shots=2, batch_size=8, progress=False)
    assert len(shots.train.y) == 4


def test_single_set_is_split_and_pixels_work(pair):
    src = F.pixels(16, 3)
    d = prepare(src, pair / "train", batch_size=8, progress=False)
    assert d.test_source is None and len(d.train.y) + len(d.test.y) == 24
    assert run_linear(src, d, max_iter=30)["accuracy"] >= 0.75


def test_fashion_mnist_idx_folder_gives_both_splits(tmp_path):
    root = idx_folder(tmp_path / "fmnist")
    train, test = resolve_pair(root)
    assert (train.kind, train.split, test.split) == ("fashion-mnist", "train", "test")
    f = F.extract(F.pixels(28, 1), test, batch_size=4, progress=False)
    assert f.x.shape == (10, 784) and f.y.tolist() == [0, 1] * 5


def test_labelled_shards(source, pair, tmp_path):
    make_shards(pair / "train", tmp_path / "shards", shard_size=10, progress=False)
    data = resolve(tmp_path / "shards")
    assert data.kind == "shards" and data.num_samples == 24 and data.classes == ["square", "stripes"]
    f = F.extract(source, data, batch_size=5, progress=False)
    assert sorted(f.y.tolist()) == [0] * 12 + [1] * 12


def test_unlabelled_data_is_refused(source, tmp_path):
    with pytest.raises(UnlabelledError, match="no labels"):
        resolve(flat_folder(tmp_path / "flat"))
    make_shards(tmp_path / "flat", tmp_path / "shards", shard_size=10, fmt="files", progress=False)
    with pytest.raises(UnlabelledError, match="without a label"):
        F.extract(source, resolve(tmp_path / "shards"), progress=False)


def test_missing_things_are_clear_errors(tmp_path):
    with pytest.raises(JepakitError, match="not found"):
        resolve(tmp_path / "nothing")
    with pytest.raises(JepakitError, match="checkpoint not found"):
        F.from_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "run").mkdir()
    with pytest.raises(JepakitError, match="no checkpoint"):
        F.from_run(tmp_path / "run")
    with pytest.raises(JepakitError, match="run directory not found"):
        F.from_run(tmp_path / "absent")


def test_hooked_target_module_is_read_as_a_plain_encoder_with_the_target_weights():
    """data2vec's target module answers with an average of its last layers; evaluation
    must read the encoder itself (last layer and last4) with the target's weights."""
    from jepakit.method import build_method
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    d2v = (*TINY_ENCODER, "target_updater.name=data2vec", "target_updater.params.top_k=2",
           "target_updater.params.layer_output=block")
    recipe = load_recipe(TINY, d2v)
    model, _ = build_method(recipe, default_registry(), "cpu")
    with torch.no_grad():
        for p in model.target_encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))  # target weights differ from the online ones
    from jepakit.method import module_states

    state = module_states(model)
    encoder = F.encoder_from_recipe(recipe, state=state)
    assert F.has_blocks(encoder)
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        plain = F.encode(encoder, images, "last")
        hooked_avg = model.target_encoder(images).mean(1)
        model.encoder.load_state_dict(state["target_encoder"])
        expected = model.encoder(images).mean(1)
    torch.testing.assert_close(plain, expected)
    assert not torch.allclose(plain, hooked_avg, atol=1e-3)
    assert F.encode(encoder, images, "last4").shape == (2, 4 * 32)


def test_split_file_keeps_the_named_images(source, pair, tmp_path):
    import shutil

    folder = tmp_path / "named"
    for cls in ("square", "stripes"):  # unique names, as ImageNet's n01440764_10026.JPEG
        (folder / cls).mkdir(parents=True)
        for f in (pair / "train" / cls).iterdir():
            shutil.copy(f, folder / cls / f"{cls}_{f.name}")
    names = sorted(p.name for p in (folder / "square").iterdir())[:3]
    names += sorted(p.stem for p in (folder / "stripes").iterdir())[:2]  # no extension
    split = tmp_path / "1percent.txt"
    split.write_text("\n".join(names) + "\n")
    kw = dict(test_data=pair / "test", batch_size=8, cache_dir=tmp_path, progress=False)
    d = prepare(source, folder, shots_file=split, **kw)
    assert d.train.y.tolist() == [0, 0, 0, 1, 1]
    split.write_text("nothing_here.JPEG\n")
    with pytest.raises(JepakitError, match="none of its 1 file names"):
        prepare(source, folder, shots_file=split, **kw)
