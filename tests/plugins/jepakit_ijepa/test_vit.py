"""ViT encoder: masked patch embedding, shapes, and paper model sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jepakit_ijepa.vit import PatchEmbed, VisionTransformer, ViTConfig

from jepakit.contracts import Encoder
from jepakit.errors import ConfigError
from jepakit.ops import gather_tokens

TINY = {"image_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2}


@pytest.fixture()
def vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(ViTConfig(**TINY)).eval()


def _images(batch: int = 3, size: int = 16) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _keep(batch: int, n: int, k: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=g)[:k] for _ in range(batch)])


def test_patch_embed_with_keep_equals_conv_gathered():
    torch.manual_seed(0)
    embed = PatchEmbed(4, 3, 32)
    images = _images()
    full = F.conv2d(images, embed.proj.weight, embed.proj.bias, stride=4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(embed(images), full)
    keep = _keep(3, 16, 6)
    torch.testing.assert_close(embed(images, keep), gather_tokens(full, keep), atol=1e-5, rtol=1e-5)


def test_contract_attributes(vit):
    assert isinstance(vit, Encoder)
    assert vit.embed_dim == 32
    assert vit.patch_grid == (4, 4)
    assert vit.image_size == (16, 16)
    assert vit.in_chans == 3
    assert len(vit.blocks) == 2


def test_output_shapes(vit):
    images = _images()
    assert vit(images).shape == (3, 16, 32)
    assert vit(images, keep=_keep(3, 16, 5)).shape == (3, 5, 32)


def test_keep_all_in_raster_order_equals_full(vit):
    images = _images()
    keep = torch.arange(16).expand(3, 16)
    torch.testing.assert_close(vit(images, keep=keep), vit(images), atol=1e-5, rtol=1e-5)


def test_keep_permutation_permutes_output(vit):
    """Positions travel with their patches: a permuted keep gives permuted tokens."""
    images = _images()
    keep = _keep(3, 16, 16)
    full = vit(images)
    torch.testing.assert_close(vit(images, keep=keep), gather_tokens(full, keep),
                               atol=1e-5, rtol=1e-5)


def test_output_depends_only_on_kept_patches(vit):
    images = _images(1)
    keep = torch.tensor([[0, 5, 10, 15]])
    changed = images.clone()
    changed[:, :, 4:8, 0:4] += 3.0  # patch 4, not kept
    torch.testing.assert_close(vit(changed, keep=keep), vit(images, keep=keep))
    changed[:, :, 0:4, 0:4] += 3.0  # patch 0, kept
    assert not torch.allclose(vit(changed, keep=keep), vit(images, keep=keep))


def test_config_validation(registry):
    with pytest.raises(ValueError, match="multiple"):
        ViTConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError):
        ViTConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match=r"encoder\.params\.size.*'huge'.*'colossal'"):
        registry.create("encoder", "vit", {"size": "colossal"}, path="encoder.params")
    with pytest.raises(ConfigError, match="encoder.params"):
        registry.create("encoder", "vit", {"image_size": 30, "patch_size": 4},
                        path="encoder.params")


# Paper sizes (I-JEPA table/ViT papers): parameters of the encoder without a head.
PAPER_SIZES = [
    ("tiny", 16, 5.5e6),
    ("small", 16, 21.7e6),
    ("base", 16, 85.6e6),
    ("large", 16, 303e6),
    ("huge", 14, 630e6),
    ("giant", 16, 1.0e9),
]


@pytest.mark.parametrize(("size", "patch", "expected"), PAPER_SIZES)
def test_paper_sizes_on_meta(size, patch, expected):
    with torch.device("meta"):
        model = VisionTransformer(ViTConfig(size=size, image_size=224, patch_size=patch))
    count = sum(p.numel() for p in model.parameters())
    assert next(model.parameters()).device.type == "meta"
    assert abs(count - expected) / expected < 0.03, f"{size}: {count:,}"


def test_fused_attention_matches_naive_softmax_attention():
    """The fused scaled_dot_product_attention path equals softmax(q k^T / sqrt(d)) v."""
    from jepakit_ijepa.vit import Attention

    torch.manual_seed(0)
    attn = Attention(dim=32, num_heads=4)
    x = torch.randn(3, 10, 32)
    q, k, v = attn.qkv(x).view(3, 10, 3, 4, 8).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) / 8**0.5).softmax(dim=-1)
    reference = attn.proj((weights @ v).transpose(1, 2).reshape(3, 10, 32))
    torch.testing.assert_close(attn(x), reference, atol=1e-5, rtol=1e-5)


def test_activation_checkpointing_gives_the_same_outputs_and_gradients():
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)
        vit = VisionTransformer(ViTConfig(image_size=16, patch_size=4, embed_dim=32, depth=2,
                                          num_heads=2, activation_checkpointing=flag))
        x = torch.randn(2, 3, 16, 16)
        out = vit(x, keep=torch.tensor([[0, 3, 5], [1, 2, 15]]))
        out.square().mean().backward()
        grads.append((out.detach(), vit.blocks[0].attn.qkv.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_cpu_bf16_attention_runs_in_fp32(monkeypatch):
    """Under bf16 autocast on a CPU the attention kernel gets fp32 inputs (CPU flash
    attention is 2-3x slower in bf16) and the block still returns bf16."""
    from jepakit_ijepa import vit as vit_module

    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append(q.dtype)
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(vit_module.F, "scaled_dot_product_attention", spy)
    attn = vit_module.Attention(32, 4)
    x = torch.randn(2, 5, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(x)
    assert seen == [torch.float32] and out.dtype == torch.bfloat16
    monkeypatch.setattr(vit_module, "CPU_BF16_ATTENTION_IN_FP32", False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attn(x)
    assert seen[-1] == torch.bfloat16
