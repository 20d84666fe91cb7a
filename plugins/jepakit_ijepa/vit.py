"""Vision Transformer encoder as I-JEPA uses it (Assran et al., 2023, arXiv 2301.08243).

Fixed 2-D sin-cos position embeddings (computed for any image size that divides
into patches, so multi-crop views of other sizes work), no class token, pre-norm blocks with
LayerNorm eps 1e-6 and qkv bias (the official code's choices). Only the kept
patches are embedded and go through the blocks, so the context encoder costs
in proportion to the context size.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from torch import nn
from torch.utils.checkpoint import checkpoint

from jepakit.ops import gather_tokens, patchify, sincos_pos_embed_2d

# Paper sizes (width, depth, heads, mlp_ratio); giant uses ViT-g's 48/11 MLP ratio.
VIT_SIZES: dict[str, tuple[int, int, int, float]] = {
    "tiny": (192, 12, 3, 4.0),
    "small": (384, 12, 6, 4.0),
    "base": (768, 12, 12, 4.0),
    "large": (1024, 24, 16, 4.0),
    "huge": (1280, 32, 16, 4.0),
    "giant": (1408, 40, 16, 48 / 11),
}


@attrs.define
class ViTConfig:
    """``size`` picks a paper preset; ``embed_dim``/``depth``/``num_heads``/``mlp_ratio`` override it."""

    size: Literal["tiny", "small", "base", "large", "huge", "giant"] = "tiny"
    image_size: int = attrs.field(default=224, validator=v.gt(0))
    patch_size: int = attrs.field(default=16, validator=v.gt(0))
    in_chans: int = attrs.field(default=3, validator=v.gt(0))
    embed_dim: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    depth: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    num_heads: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    mlp_ratio: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    drop_path: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(1)])
    activation_checkpointing: bool = False
    """Recompute each block in the backward pass: less memory for larger batches, ~1/3 more compute."""

    def __attrs_post_init__(self) -> None:
        if self.size not in VIT_SIZES:
            raise ValueError(f"size: expected one of {sorted(VIT_SIZES)}, got {self.size!r}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        dim, _, heads, _ = self.resolved()
        if dim % heads or dim % 4:
            raise ValueError(f"embed_dim {dim} must divide by num_heads {heads} and by 4")

    def resolved(self) -> tuple[int, int, int, float]:
        dim, depth, heads, ratio = VIT_SIZES[self.size]
        return (
            dim if self.embed_dim is None else self.embed_dim,
            depth if self.depth is None else self.depth,
            heads if self.num_heads is None else self.num_heads,
            ratio if self.mlp_ratio is None else self.mlp_ratio,
        )


CPU_BF16_ATTENTION_IN_FP32 = True
"""Under bf16 autocast on a CPU, run attention in fp32 (docs/performance.md): torch's CPU
flash attention is 2-3x slower in bf16 than in fp32, forward + backward, at JEPA's
lengths (torch 2.14 on an AMX CPU, one thread: 16 x 3 heads x 59 tokens x 64, 17.2 ms
against 7.5 ms; the predictor's 64 x 3 x 95 x 32, 117 against 49 ms)."""


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, val = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if q.dtype == torch.bfloat16 and q.device.type == "cpu" and CPU_BF16_ATTENTION_IN_FP32:
            with torch.autocast("cpu", enabled=False):  # autocast would cast back to bf16
                out = F.scaled_dot_product_attention(q.float(), k.float(), val.float())
            out = out.to(x.dtype)
        else:
            out = F.scaled_dot_product_attention(q, k, val)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_transformer(module: nn.Module, blocks: nn.ModuleList) -> None:
    """Truncated-normal(0.02) linears, unit LayerNorms, and residual output
    projections scaled by 1/sqrt(2 * layer) so deep stacks start stable."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))


class PatchEmbed(nn.Module):
    """Conv-shaped patch embedding that can embed only the kept patches."""

    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is None:
            return self.proj(images).flatten(2).transpose(1, 2)
        patches = gather_tokens(patchify(images, self.patch_size), keep)
        return F.linear(patches, self.proj.weight.flatten(1), self.proj.bias)


class VisionTransformer(nn.Module):
    """``vit(images, keep=None)`` -> tokens [B, K or N, D] (the jepakit encoder contract)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        dim, depth, heads, ratio = config.resolved()
        self.config = config
        self.embed_dim = dim
        self.in_chans = config.in_chans
        self.image_size = (config.image_size, config.image_size)
        self.patch_grid = (config.image_size // config.patch_size,) * 2
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, dim)
        self.register_buffer(
            "pos_embed", sincos_pos_embed_2d(dim, self.patch_grid).unsqueeze(0), persistent=False
        )
        rates = [config.drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(dim, heads, ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        init_transformer(self, self.blocks)

    @property
    def num_patches(self) -> int:
        return self.patch_grid[0] * self.patch_grid[1]

    def positions(self, images: torch.Tensor) -> torch.Tensor:
        """The sin-cos table [1, N, D] for the images' patch grid: the built one at
        ``image_size``, computed for other sizes (multi-crop views: LeJEPA's 98 px locals)."""
        p = self.config.patch_size
        grid = (images.shape[-2] // p, images.shape[-1] // p)
        if grid == self.patch_grid:
            return self.pos_embed
        return sincos_pos_embed_2d(self.embed_dim, grid).to(images.device).unsqueeze(0)

    def forward_intermediates(self, images: torch.Tensor, indices: int = 4, norm: bool = True,
                              ) -> list[torch.Tensor]:
        """The outputs [B, N, D] of the last ``indices`` blocks, each through the final norm
        when ``norm`` (DINO's ``get_intermediate_layers``; timm's ``forward_intermediates``
        with ``output_fmt="NLC"``): evaluation reads "last 4" with one call, and data2vec
        its top-K layers, without running the blocks by hand."""
        x = self.patch_embed(images)
        x = x + self.positions(images).to(x.dtype)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= len(self.blocks) - indices:
                outputs.append(self.norm(x) if norm else x)
        return outputs

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.patch_embed(images, keep)
        pos = self.positions(images).to(x.dtype)
        x = x + (pos if keep is None else pos[0][keep])
        for block in self.blocks:
            if self.config.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)
