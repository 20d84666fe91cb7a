"""The video Vision Transformer of V-JEPA (Bardes et al. 2024) and V-JEPA 2 (Assran et al.
2025, arXiv 2506.09985): tubelet patches, 3-D positions, no class token.

A clip [B, C, T, H, W] is cut into tubelets of ``tubelet`` frames x ``patch_size`` x
``patch_size`` pixels (a Conv3d with kernel = stride, 2 x 16 x 16 by default), giving a
(T/tubelet, H/p, W/p) token grid in raster order. As the image ViT does, only the kept
tubelets are embedded and go through the blocks, so the context encoder costs in
proportion to its context. Images [B, C, H, W] are one-frame clips (V-JEPA 2.1): the
image is repeated over ``tubelet`` frames, giving a (1, H/p, W/p) grid.

``positions: sincos`` adds V-JEPA's fixed 3-D table; ``positions: rope`` rotates queries
and keys in every block by V-JEPA 2's 3-D RoPE (``positions.py``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from torch import nn

from jepakit.ops import gather_tokens

from .layers import Block, Rope, init_weights, run_blocks
from .positions import rope_segment, rope_tables, sincos_pos_embed_3d

# (width, depth, heads, mlp_ratio): the official vit_* sizes (vjepa2 vision_transformer.py).
VIDEO_VIT_SIZES: dict[str, tuple[int, int, int, float]] = {
    "tiny": (192, 12, 3, 4.0),
    "small": (384, 12, 6, 4.0),
    "base": (768, 12, 12, 4.0),
    "large": (1024, 24, 16, 4.0),
    "huge": (1280, 32, 16, 4.0),
    "giant": (1408, 40, 16, 48 / 11),
    "gigantic": (1664, 48, 16, 64 / 13),
}
Positions = Literal["sincos", "rope"]


@attrs.define
class VideoViTConfig:
    """``size`` picks an official preset (ViT-L/16 is ``large``, g ``giant``, G
    ``gigantic``); ``embed_dim``/``depth``/``num_heads``/``mlp_ratio`` override it."""

    size: Literal["tiny", "small", "base", "large", "huge", "giant", "gigantic"] = "large"
    image_size: int = attrs.field(default=224, validator=v.gt(0))
    patch_size: int = attrs.field(default=16, validator=v.gt(0))
    num_frames: int = attrs.field(default=16, validator=v.gt(0))
    """Clip length T in frames (V-JEPA 2 pretraining: 16)."""
    tubelet: int = attrs.field(default=2, validator=v.gt(0))
    """Frames per tubelet (the Conv3d's temporal kernel and stride)."""
    in_chans: int = attrs.field(default=3, validator=v.gt(0))
    positions: Positions = attrs.field(default="rope", validator=v.in_(("sincos", "rope")))
    """``sincos`` (V-JEPA) or ``rope`` (V-JEPA 2)."""
    uniform_power: bool = False
    """sin-cos only: a third of the channels per axis instead of t 1/2, h 1/4, w 1/4."""
    embed_dim: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    depth: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    num_heads: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    mlp_ratio: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    drop_path: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(1)])
    activation_checkpointing: bool = False
    """Recompute each block in the backward pass: less memory, ~1/3 more compute."""

    def __attrs_post_init__(self) -> None:
        if self.size not in VIDEO_VIT_SIZES:
            raise ValueError(f"size: expected one of {sorted(VIDEO_VIT_SIZES)}, got {self.size!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size "
                             f"{self.patch_size}")
        if self.num_frames % self.tubelet:
            raise ValueError(f"num_frames {self.num_frames} is not a multiple of tubelet "
                             f"{self.tubelet}")
        dim, _, heads, _ = self.resolved()
        check_positions(dim, heads, self.positions, "embed_dim")

    def resolved(self) -> tuple[int, int, int, float]:
        dim, depth, heads, ratio = VIDEO_VIT_SIZES[self.size]
        return (dim if self.embed_dim is None else self.embed_dim,
                depth if self.depth is None else self.depth,
                heads if self.num_heads is None else self.num_heads,
                ratio if self.mlp_ratio is None else self.mlp_ratio)


def check_positions(dim: int, heads: int, positions: str, key: str) -> None:
    """The width fits the heads and the position scheme, or a ValueError naming ``key``."""
    if dim % heads:
        raise ValueError(f"{key} {dim} must divide by num_heads {heads}")
    if positions == "sincos" and dim % 8:
        raise ValueError(f"{key} {dim} must divide by 8 for 3-D sin-cos positions")
    if positions == "rope" and rope_segment(dim // heads) == 0:
        raise ValueError(f"{key} {dim} / num_heads {heads}: 3-D RoPE needs a head dim >= 6")


def register_positions(module: nn.Module, positions: str, dim: int, heads: int,
                       grid: tuple[int, int, int], uniform_power: bool) -> None:
    """The built grid's tables as non-persistent buffers (``pos_embed``, or ``rope_cos`` and
    ``rope_sin``): they follow the module's device and are never saved, as the image ViT's
    table. Made on the device being built on (a ``torch.device`` context: meta, cuda)."""
    here = torch.empty(0).device
    if positions == "sincos":
        table = sincos_pos_embed_3d(dim, grid, uniform_power)
        module.register_buffer("pos_embed", table.to(here), persistent=False)
        return
    cos, sin = rope_tables(dim // heads, grid)
    module.register_buffer("rope_cos", cos.to(here), persistent=False)
    module.register_buffer("rope_sin", sin.to(here), persistent=False)


def tubeletify(clips: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, N, C*tubelet*p*p] in raster order (t, h, w), laid out as a
    ``Conv3d`` weight [D, C, tubelet, p, p] flattens, so a linear layer on these rows
    equals the convolutional tubelet embedding."""
    b, c, t, h, w = clips.shape
    x = clips.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)
    return x.reshape(b, (t // tubelet) * (h // patch) * (w // patch), c * tubelet * patch * patch)


class TubeletEmbed(nn.Module):
    """Conv3d-shaped tubelet embedding that can embed only the kept tubelets."""

    def __init__(self, tubelet: int, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.tubelet, self.patch_size = tubelet, patch_size
        kernel = (tubelet, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=kernel, stride=kernel)

    def forward(self, clips: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is None:
            return self.proj(clips).flatten(2).transpose(1, 2)
        rows = gather_tokens(tubeletify(clips, self.tubelet, self.patch_size), keep)
        return F.linear(rows, self.proj.weight.flatten(1), self.proj.bias)


class VideoVisionTransformer(nn.Module):
    """``vit_video(clips, keep=None)`` -> tokens [B, K or N, D] (the encoder contract, on
    a (T', H', W') grid); attributes ``num_frames`` and ``tubelet`` besides the image
    encoder's."""

    def __init__(self, config: VideoViTConfig) -> None:
        super().__init__()
        dim, depth, heads, ratio = config.resolved()
        self.config = config
        self.embed_dim = dim
        self.num_heads = heads
        self.in_chans = config.in_chans
        self.num_frames = config.num_frames
        self.tubelet = config.tubelet
        self.image_size = (config.image_size, config.image_size)
        side = config.image_size // config.patch_size
        self.patch_grid = (config.num_frames // config.tubelet, side, side)
        self.patch_embed = TubeletEmbed(config.tubelet, config.patch_size, config.in_chans, dim)
        register_positions(self, config.positions, dim, heads, self.patch_grid,
                           config.uniform_power)
        rates = [config.drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(dim, heads, ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        init_weights(self, self.blocks)

    @property
    def num_patches(self) -> int:
        t, h, w = self.patch_grid
        return t * h * w

    def as_clips(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T, H, W] as is; an image [B, C, H, W] repeated over ``tubelet`` frames."""
        if x.ndim == 4:
            return x.unsqueeze(2).expand(-1, -1, self.tubelet, -1, -1)
        if x.ndim != 5:
            raise ValueError(f"expected clips [B, C, T, H, W] or images [B, C, H, W], got "
                             f"{tuple(x.shape)}")
        return x

    def grid_of(self, clips: torch.Tensor) -> tuple[int, int, int]:
        t, h, w = clips.shape[-3:]
        p = self.config.patch_size
        return t // self.tubelet, h // p, w // p

    def _positions(self, grid: tuple[int, int, int], x: torch.Tensor,
                   keep: torch.Tensor | None) -> tuple[torch.Tensor, Rope]:
        """Tokens with sin-cos positions added, or the rotary tables for the blocks."""
        if self.config.positions == "sincos":
            table = self.pos_embed if grid == self.patch_grid else sincos_pos_embed_3d(
                self.embed_dim, grid, self.config.uniform_power).to(x.device)
            table = table.to(x.dtype)
            return x + (table.unsqueeze(0) if keep is None else table[keep]), None
        if grid == self.patch_grid:
            cos, sin = self.rope_cos, self.rope_sin
        else:  # another clip length or size: RoPE works on any grid
            cos, sin = (t.to(x.device) for t in rope_tables(self.embed_dim // self.num_heads, grid))
        if keep is None:
            return x, (cos.unsqueeze(0), sin.unsqueeze(0))
        return x, (cos[keep], sin[keep])

    def embed(self, images: torch.Tensor, keep: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, Rope]:
        clips = self.as_clips(images)
        x = self.patch_embed(clips, keep)
        return self._positions(self.grid_of(clips), x, keep)

    def forward_intermediates(self, images: torch.Tensor, indices: int = 4, norm: bool = True,
                              ) -> list[torch.Tensor]:
        """The outputs [B, N, D] of the last ``indices`` blocks, each through the final norm
        when ``norm`` (as the image ViT's, which evaluation reads)."""
        x, rope = self.embed(images)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x, rope)
            if i >= len(self.blocks) - indices:
                outputs.append(self.norm(x) if norm else x)
        return outputs

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x, rope = self.embed(images, keep)
        recompute = self.config.activation_checkpointing and self.training
        return self.norm(run_blocks(self.blocks, x, rope, recompute))
