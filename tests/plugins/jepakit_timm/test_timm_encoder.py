"""The ``timm`` encoder plugin: any timm ViT behind the encoder contract."""

from __future__ import annotations

import pytest
import torch

import jepakit
from jepakit.contracts import Encoder
from jepakit.errors import ConfigError
from jepakit.interop import export_timm
from jepakit.ops import sincos_pos_embed_2d

torch.set_num_threads(1)

SMALL = {"depth": 2, "embed_dim": 48, "num_heads": 3}


def _encoder(registry, model="vit_small_patch16_224", **params):
    params = {"model": model, "image_size": 32, "patch_size": 8, "kwargs": dict(SMALL), **params}
    return registry.create("encoder", "timm", params)


def _images(n=2, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("model", ["vit_small_patch16_224", "vit_base_patch16_gap_224",
                                   "vit_medium_patch16_reg4_gap_256"])
def test_fits_the_encoder_contract(registry, model):
    encoder = _encoder(registry, model).eval()
    assert isinstance(encoder, Encoder)
    assert encoder.embed_dim == 48 and encoder.patch_grid == (4, 4)
    assert encoder.image_size == (32, 32) and encoder.in_chans == 3
    images = _images()
    with torch.no_grad():
        full = encoder(images)
        assert full.shape == (2, 16, 48)  # patch tokens only: class/register tokens cut off
        # kept patches, in keep order: attention is order-free once positions are added
        keep = torch.stack([torch.randperm(16, generator=torch.Generator().manual_seed(b))
                            for b in range(2)])
        shuffled = encoder(images, keep)
        assert torch.allclose(shuffled, torch.stack([full[b, keep[b]] for b in range(2)]),
                              atol=1e-5)
        assert encoder(images, keep[:, :5]).shape == (2, 5, 48)


def test_matches_timm_forward_features(registry):
    encoder = _encoder(registry).eval()
    with torch.no_grad():
        ours = encoder(_images())
        timms = encoder.model.forward_features(_images())[:, encoder.num_prefix_tokens:]
    assert torch.allclose(ours, timms, atol=1e-6)


def test_dynamic_image_size(registry):
    encoder = _encoder(registry)
    assert encoder(_images(1, 48)).shape == (1, 36, 48)
    fixed = _encoder(registry, dynamic_img_size=False)
    with pytest.raises(AssertionError):  # timm's own check, kept when asked for
        fixed(_images(1, 48))


def test_fixed_sincos_position_embedding_is_frozen(registry):
    encoder = _encoder(registry, "vit_base_patch16_gap_224", fixed_pos_embed=True)
    pos = encoder.model.pos_embed
    assert not pos.requires_grad
    assert torch.equal(pos[0], sincos_pos_embed_2d(48, (4, 4)))
    with_cls = _encoder(registry, fixed_pos_embed=True).model.pos_embed
    assert torch.equal(with_cls[0, 0], torch.zeros(48))  # the class token's slot


def test_config_mistakes(registry):
    with pytest.raises(ConfigError, match="did you mean 'vit_small_patch16_224'"):
        registry.create("encoder", "timm", {"model": "vit_smal_patch16_224"})
    with pytest.raises(ConfigError, match="VisionTransformer family"):
        registry.create("encoder", "timm", {"model": "resnet18", "dynamic_img_size": False,
                                            "kwargs": {}})
    with pytest.raises(ConfigError, match="set by the encoder"):
        registry.create("encoder", "timm", {"kwargs": {"num_classes": 10}})
    with pytest.raises(ConfigError, match="encoder.params"):
        _encoder(registry, kwargs={"no_such_argument": 1})


def test_trains_from_a_recipe_and_exports_to_timm(registry, tiny_recipe, tmp_path):
    trainer = jepakit.build(tiny_recipe, [
        "encoder.name=timm",
        "encoder.params={model: vit_small_patch16_224, image_size: 32, patch_size: 8, "
        "fixed_pos_embed: true, kwargs: {depth: 1, embed_dim: 48, num_heads: 3}}",
        "predictor.params.embed_dim=24", "predictor.params.depth=1",
        "predictor.params.num_heads=3", "masker.params.min_keep=1",
        "train.steps=2", "train.batch_size=4", "logging.every_steps=1",
        "logging.progress=false", "monitors.probe_samples=0", "data.params.num_samples=8",
    ], registry=registry, write_files=False)
    summary = trainer.fit()
    assert summary["steps"] == 2 and torch.isfinite(torch.tensor(summary["final_loss"]))
    target = trainer.model.target_encoder.eval()
    result = export_timm(target, tmp_path / "timm")
    assert result["architecture"] == "vit_small_patch16_224"
    assert result["max_difference"] is not None and result["max_difference"] <= 1e-5
