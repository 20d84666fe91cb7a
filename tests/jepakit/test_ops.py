"""Shared tensor ops: token gather, patchify, sin-cos position embeddings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from jepakit.ops import gather_tokens, patchify, sincos_pos_embed_1d, sincos_pos_embed_2d


@pytest.mark.parametrize(("b", "n", "d", "k"), [(1, 5, 3, 2), (4, 16, 8, 16), (3, 10, 1, 7)])
def test_gather_tokens_equals_torch_gather(b, n, d, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, n, d, generator=g)
    idx = torch.randint(0, n, (b, k), generator=g)
    reference = torch.gather(x, 1, idx.unsqueeze(-1).expand(b, k, d))
    out = gather_tokens(x, idx)
    assert out.shape == (b, k, d)
    assert torch.equal(out, reference)


def test_gather_tokens_uses_each_rows_own_indices():
    x = torch.arange(2 * 3 * 1, dtype=torch.float32).view(2, 3, 1)
    idx = torch.tensor([[2, 0], [2, 0]])
    assert gather_tokens(x, idx).flatten().tolist() == [2.0, 0.0, 5.0, 3.0]


def test_gather_tokens_backward_matches():
    x = torch.randn(2, 6, 4, requires_grad=True)
    idx = torch.tensor([[0, 0, 5], [1, 2, 3]])
    gather_tokens(x, idx).sum().backward()
    expected = torch.zeros(2, 6)
    expected[0, 0], expected[0, 5] = 2, 1
    expected[1, 1:4] = 1
    assert torch.equal(x.grad[..., 0], expected)


@pytest.mark.parametrize(("c", "h", "w", "p"), [(3, 8, 8, 4), (1, 12, 8, 4), (2, 6, 9, 3)])
def test_patchify_linear_equals_conv(c, h, w, p):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, c, h, w, generator=g)
    weight = torch.randn(5, c, p, p, generator=g)
    bias = torch.randn(5, generator=g)
    conv = F.conv2d(images, weight, bias, stride=p).flatten(2).transpose(1, 2)
    patches = patchify(images, p)
    assert patches.shape == (2, (h // p) * (w // p), c * p * p)
    torch.testing.assert_close(F.linear(patches, weight.flatten(1), bias), conv,
                               atol=1e-5, rtol=1e-5)


def test_patchify_raster_order():
    images = torch.zeros(1, 1, 4, 6)
    images[0, 0, 2:4, 4:6] = 1.0  # bottom-right patch of a 2x3 grid of 2x2 patches
    patches = patchify(images, 2)
    assert patches[0].sum(-1).tolist() == [0, 0, 0, 0, 0, 4]


def test_sincos_1d_values():
    emb = sincos_pos_embed_1d(8, torch.arange(5))
    assert emb.shape == (5, 8)
    assert emb[0].tolist() == [0.0] * 4 + [1.0] * 4
    omega = [1.0 / 10000 ** (i / 4) for i in range(4)]
    expected = [math.sin(3 * o) for o in omega] + [math.cos(3 * o) for o in omega]
    torch.testing.assert_close(emb[3], torch.tensor(expected, dtype=emb.dtype))


def test_sincos_2d_shape_and_layout():
    dim, (h, w) = 16, (3, 5)
    emb = sincos_pos_embed_2d(dim, (h, w))
    assert emb.shape == (h * w, dim) and emb.dtype == torch.float32
    cols = sincos_pos_embed_1d(dim // 2, torch.arange(w)).float()
    rows = sincos_pos_embed_1d(dim // 2, torch.arange(h)).float()
    for r in range(h):
        for c in range(w):
            i = r * w + c
            torch.testing.assert_close(emb[i, : dim // 2], cols[c])  # first half: column
            torch.testing.assert_close(emb[i, dim // 2:], rows[r])  # second half: row
    assert emb.unique(dim=0).shape[0] == h * w  # every position distinct


def test_sincos_rejects_bad_widths():
    with pytest.raises(ValueError):
        sincos_pos_embed_1d(7, torch.arange(3))
    with pytest.raises(ValueError):
        sincos_pos_embed_2d(6, (2, 2))
