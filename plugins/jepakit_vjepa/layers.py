"""Transformer blocks that take per-token rotary tables (V-JEPA 2's 3-D RoPE) or none
(V-JEPA's sin-cos positions are added to the tokens before the blocks).

Parameter names equal the image ViT's and the official code's (``norm1``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), so checkpoints convert by renaming
prefixes only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jepakit_ijepa import vit as image_vit
from jepakit_ijepa.vit import MLP, DropPath
from torch import nn
from torch.utils.checkpoint import checkpoint

from .positions import apply_rope

Rope = tuple[torch.Tensor, torch.Tensor] | None
"""(cos, sin) [B or 1, K, head_dim] for the tokens in the sequence, or None."""


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention; fp32 under CPU bf16 autocast as the image ViT does
    (``jepakit_ijepa.vit.CPU_BF16_ATTENTION_IN_FP32``, docs/performance.md)."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and image_vit.CPU_BF16_ATTENTION_IN_FP32:
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: Rope = None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = attend(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm block (LayerNorm eps 1e-6, GELU MLP, qkv bias), the official V-JEPA block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, rope: Rope = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), rope))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, rope: Rope, recompute: bool) -> torch.Tensor:
    """The blocks in order; with ``recompute`` (activation checkpointing) each block's
    activations are recomputed in the backward pass instead of kept."""
    for block in blocks:
        if recompute and torch.is_grad_enabled():
            x = checkpoint(block, x, rope, use_reentrant=False)
        else:
            x = block(x, rope)
    return x


def init_weights(module: nn.Module, blocks: nn.ModuleList) -> None:
    """The official init: trunc-normal(0.02) linears and patch convolutions, unit
    LayerNorms, and each block's output projections divided by sqrt(2 * layer)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))
