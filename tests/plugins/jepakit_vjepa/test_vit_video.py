"""The video ViT: tubelets equal a Conv3d, 3-D positions equal direct re-statements of
the official code's, images are one-frame clips, activation checkpointing changes nothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jepakit_vjepa.positions import apply_rope, rope_tables, sincos_pos_embed_3d
from jepakit_vjepa.vit import VideoVisionTransformer, VideoViTConfig, tubeletify
from vjepa_helpers import official_rope_3d, official_sincos_3d

torch.set_num_threads(1)


def small(**kw) -> VideoVisionTransformer:
    params = {"size": "tiny", "image_size": 32, "patch_size": 8, "num_frames": 4, "tubelet": 2,
              "embed_dim": 48, "depth": 2, "num_heads": 2, **kw}
    torch.manual_seed(0)
    return VideoVisionTransformer(VideoViTConfig(**params)).eval()


def test_tubelet_embedding_equals_a_conv3d_on_all_tubelets_and_on_kept_ones():
    enc = small()
    clips = torch.randn(2, 3, 4, 32, 32)
    conv = F.conv3d(clips, enc.patch_embed.proj.weight, enc.patch_embed.proj.bias,
                    stride=(2, 8, 8)).flatten(2).transpose(1, 2)
    assert conv.shape == (2, 2 * 4 * 4, 48)
    torch.testing.assert_close(enc.patch_embed(clips), conv)
    keep = torch.stack([torch.randperm(32)[:7] for _ in range(2)])
    kept = enc.patch_embed(clips, keep)
    torch.testing.assert_close(kept, torch.stack([conv[b, keep[b]] for b in range(2)]),
                               rtol=1e-5, atol=1e-5)


def test_tubeletify_is_raster_order_t_then_h_then_w():
    clips = torch.arange(1 * 1 * 4 * 4 * 4, dtype=torch.float32).reshape(1, 1, 4, 4, 4)
    rows = tubeletify(clips, tubelet=2, patch=2)  # grid (2, 2, 2)
    # token 5 = t 1, h 0, w 1: frames 2-3, rows 0-1, columns 2-3
    expected = clips[0, 0, 2:4, 0:2, 2:4].reshape(-1)
    torch.testing.assert_close(rows[0, 5], expected)


def test_3d_sincos_table_equals_the_official_one():
    ours = sincos_pos_embed_3d(48, (3, 4, 4))
    theirs = torch.from_numpy(official_sincos_3d(48, 4, 3)).float()
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("head_dim", [16, 24, 64])
def test_3d_rope_equals_a_direct_restatement_of_the_official_rotation(head_dim):
    grid = (3, 4, 5)
    ids = torch.randperm(60)[:17]
    x = torch.randn(1, 2, 17, head_dim)
    cos, sin = rope_tables(head_dim, grid)
    ours = apply_rope(x, cos[ids][None], sin[ids][None])
    torch.testing.assert_close(ours[0], official_rope_3d(x[0], ids, grid), rtol=1e-5, atol=1e-5)
    # the official pairing differs from the textbook (interleaved) one: the test can tell
    seg = 2 * ((head_dim // 3) // 2)
    inter = torch.repeat_interleave(cos[ids][:, :seg:2], 2, dim=-1)
    assert not torch.allclose(inter, cos[ids][:, :seg])


@pytest.mark.parametrize("positions", ["sincos", "rope"])
def test_images_are_one_frame_clips(positions):
    enc = small(num_frames=2, positions=positions)
    images = torch.randn(2, 3, 32, 32)
    clips = images.unsqueeze(2).repeat(1, 1, 2, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(enc(images), enc(clips))
    assert enc(images).shape == (2, 16, 48)


@pytest.mark.parametrize("positions", ["sincos", "rope"])
def test_kept_tokens_see_their_own_positions(positions):
    """Encoding only the kept tubelets equals encoding a clip holding just those tokens
    at their places: with one kept token and no attention partner, the output is the
    full model's per-token path at that position."""
    enc = small(positions=positions, depth=1)
    clips = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        one = enc(clips, keep=torch.tensor([[21]]))
        x, rope = enc.embed(clips)
        token = x[:, 21:22]
        r = None if rope is None else (rope[0][:, 21:22], rope[1][:, 21:22])
        expected = enc.norm(enc.blocks[0](token, r))
    torch.testing.assert_close(one, expected, rtol=1e-5, atol=1e-5)


def test_positions_matter_for_rope_and_sincos():
    """The same three tubelets with the third one column further away encode differently."""
    for positions in ("sincos", "rope"):
        enc = small(positions=positions)
        clips = torch.randn(1, 3, 4, 32, 32)
        moved = clips.clone()
        moved[:, :, 0:2, 0:8, 24:32] = clips[:, :, 0:2, 0:8, 16:24]  # token 2's pixels at token 3
        with torch.no_grad():
            a = enc(clips, keep=torch.tensor([[0, 1, 2]]))
            b = enc(moved, keep=torch.tensor([[0, 1, 3]]))
        assert not torch.allclose(a, b, atol=1e-4), positions


def test_activation_checkpointing_gives_the_same_gradients():
    clips = torch.randn(2, 3, 4, 32, 32)
    grads = []
    for flag in (False, True):
        enc = small(activation_checkpointing=flag).train()
        enc(clips).square().mean().backward()
        grads.append(enc.patch_embed.proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_forward_intermediates_ends_with_the_forward_output():
    enc = small()
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        outs = enc.forward_intermediates(clips, indices=2)
        assert len(outs) == 2
        torch.testing.assert_close(outs[-1], enc(clips))


@pytest.mark.parametrize(("size", "width", "depth", "hidden"),
                         [("large", 1024, 24, 4096), ("giant", 1408, 40, 6144),
                          ("gigantic", 1664, 48, 8192)])
def test_official_sizes(size, width, depth, hidden):
    """ViT-L/16, g/16 (1408 wide, 40 deep, MLP 6144) and G (1664/48, MLP 8192), counted
    from the architecture: tubelet conv, blocks (qkv, proj, 2 norms, MLP), final norm."""
    with torch.device("meta"):
        enc = VideoVisionTransformer(VideoViTConfig(size=size, image_size=256, num_frames=16))
    assert enc.embed_dim == width and len(enc.blocks) == depth
    assert enc.patch_grid == (8, 16, 16)
    d = width
    block = (3 * d * d + 3 * d) + (d * d + d) + 4 * d + (2 * d * hidden + hidden + d)
    expected = (3 * 2 * 16 * 16 * d + d) + depth * block + 2 * d
    assert sum(p.numel() for p in enc.parameters()) == expected


@pytest.mark.parametrize(("params", "message"), [
    ({"num_frames": 5}, "num_frames 5 is not a multiple of tubelet 2"),
    ({"image_size": 30}, "not a multiple of patch_size"),
    ({"positions": "sincos", "embed_dim": 36, "num_heads": 2}, "divide by 8"),
])
def test_config_errors_name_the_key(params, message):
    with pytest.raises(ValueError, match=message):
        VideoViTConfig(**params)
