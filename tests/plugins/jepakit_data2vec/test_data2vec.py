"""data2vec-style targets as plugins: the hooked EMA teacher, the loss, and the recipe."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml

import jepakit
from jepakit.contracts import Loss, TargetUpdater
from jepakit.errors import ConfigError
from jepakit.recipe import dump_recipe, load_recipe

torch.set_num_threads(1)


@pytest.fixture()
def vit(registry):
    return registry.create("encoder", "vit", {"image_size": 16, "patch_size": 4, "depth": 3,
                                              "embed_dim": 32, "num_heads": 2}).eval()


def _updater(registry, total_steps=10, **params):
    return registry.create("target_updater", "data2vec", params, total_steps=total_steps)


def _images(n=2):
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _manual_layers(vit, images):
    """Run the ViT block by block: (FFN branch outputs, block outputs)."""
    x = vit.patch_embed(images) + vit.pos_embed
    ffn, out = [], []
    for block in vit.blocks:
        a = x + block.attn(block.norm1(x))
        f = block.mlp(block.norm2(a))
        x = a + f
        ffn.append(f)
        out.append(x)
    return ffn, out


@pytest.mark.parametrize("layer_output", ["ffn", "block"])
@pytest.mark.parametrize("layer_norm", ["instance", "layer", "none"])
def test_target_is_the_average_of_the_top_k_normalised_layers(registry, vit, layer_output,
                                                               layer_norm):
    updater = _updater(registry, top_k=2, layer_output=layer_output, layer_norm=layer_norm)
    assert isinstance(updater, TargetUpdater)
    target = updater.build(vit)
    with torch.no_grad():
        got = target(_images())
        ffn, out = _manual_layers(vit, _images())
    layers = (ffn if layer_output == "ffn" else out)[-2:]

    def norm(x):
        if layer_norm == "layer":
            return F.layer_norm(x, x.shape[-1:])
        if layer_norm == "instance":
            return (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False,
                                                                    keepdim=True) + 1e-5)
        return x

    expected = (norm(layers[0]) + norm(layers[1])) / 2
    assert got.shape == (2, 16, 32)
    assert torch.allclose(got, expected, atol=1e-5)


def test_weights_stay_a_plain_encoders(registry, vit):
    target = _updater(registry, top_k=2).build(vit)
    assert set(target.state_dict()) == set(vit.state_dict())
    assert not any(p.requires_grad for p in target.parameters())
    plain = registry.create("encoder", "vit", {"image_size": 16, "patch_size": 4, "depth": 3,
                                               "embed_dim": 32, "num_heads": 2}).eval()
    plain.load_state_dict(target.state_dict())
    with torch.no_grad():  # the rebuilt encoder gives its last layer, as export and eval expect
        assert torch.allclose(plain(_images()), vit(_images()))


def test_works_with_timm_encoders_and_their_prefix_tokens(registry):
    encoder = registry.create("encoder", "timm", {
        "model": "vit_small_patch16_224", "image_size": 16, "patch_size": 4,
        "kwargs": {"depth": 2, "embed_dim": 32, "num_heads": 2, "reg_tokens": 2}})
    assert encoder.num_prefix_tokens == 3
    target = _updater(registry, top_k=2).build(encoder)
    with torch.no_grad():
        assert target(_images()).shape == (2, 16, 32)


def test_momentum_anneals_then_stays(registry, vit):
    updater = _updater(registry, total_steps=100, top_k=1, start=0.99, end=0.999,
                       anneal_fraction=0.5)
    assert updater.momentum(0) == pytest.approx(0.99)
    assert updater.momentum(25) == pytest.approx(0.9945)
    assert updater.momentum(50) == updater.momentum(99) == pytest.approx(0.999)
    target = updater.build(vit)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    updater.update(vit, target, 0)
    for old, new, online in zip(before, target.parameters(), vit.parameters()):
        assert torch.allclose(new, 0.99 * old + 0.01 * online, atol=1e-6)
    assert updater.state_dict() == {"total_steps": 100}


def test_mistakes_are_config_errors(registry, vit):
    with pytest.raises(ConfigError, match="top_k: 4 is more than the encoder's 3 blocks"):
        _updater(registry, top_k=4).build(vit)
    with pytest.raises(ConfigError, match="no 'blocks'"):
        _updater(registry, top_k=1).build(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="layer_norm"):
        _updater(registry, layer_norm="batch")


def test_loss(registry):
    loss = registry.create("loss", "data2vec", {"beta": 2.0, "target_norm": "layer"})
    assert isinstance(loss, Loss)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 16, 8, generator=g) * 3 + 1
    prepared = loss.prepare_targets(features)
    assert torch.allclose(prepared, F.layer_norm(features, (8,)))
    preds = [torch.randn(2, 4, 8, generator=g) for _ in range(2)]
    tgts = [torch.randn(2, 4, 8, generator=g) for _ in range(2)]
    expected = F.smooth_l1_loss(torch.cat(preds), torch.cat(tgts), beta=2.0)
    assert torch.allclose(loss(preds, tgts), expected)
    l2 = registry.create("loss", "data2vec", {"distance": "l2", "target_norm": "none"})
    assert torch.equal(l2.prepare_targets(features), features)
    assert torch.allclose(l2(preds, tgts), F.mse_loss(torch.cat(preds), torch.cat(tgts)))


def test_recipe_loads_and_trains(registry, repo_root):
    path = repo_root / "recipes" / "data2vec" / "data2vec_tiny.yaml"
    recipe = load_recipe(path, registry=registry)
    assert (recipe.target_updater.name, recipe.loss.name) == ("data2vec", "data2vec")
    assert load_recipe(yaml.safe_load(dump_recipe(recipe)), registry=registry) == recipe
    trainer = jepakit.build(path, [
        "encoder.params.depth=2", "target_updater.params.top_k=2", "predictor.params.depth=1",
        "train.steps=3", "train.batch_size=4", "logging.every_steps=1",
        "logging.progress=false", "data.params.num_samples=12",
    ], registry=registry, write_files=False)
    summary = trainer.fit()
    assert summary["steps"] == 3
    losses = [h["loss"] for h in trainer.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert [h["momentum"] for h in trainer.history] == pytest.approx(
        [trainer.model.target_updater.momentum(s) for s in range(3)])
    assert trainer.history[-1]["target_tokens"] == round(0.6 * 64)
