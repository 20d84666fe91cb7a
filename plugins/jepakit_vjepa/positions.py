"""Position information on a (T', H', W') token grid, flat in raster order (t, then h, then w).

Two schemes, chosen by the encoder's and predictor's ``positions`` key:

- ``sincos``: V-JEPA's fixed 3-D sin-cos table added to the tokens (Bardes et al. 2024;
  the facebookresearch/jepa code): a quarter of the channels from the row, a quarter
  from the column, half from the time step (``uniform_power``: a third each), each the
  MAE 1-D sin-cos, concatenated as [t, h, w] and cut to the width.
- ``rope``: V-JEPA 2's 3-D rotary embedding (Assran et al. 2025; facebookresearch/vjepa2,
  ``RoPEAttention``): the head dimension is split into three segments of
  ``2 * ((head_dim // 3) // 2)`` dims rotated by the t, h and w positions; any remaining
  dims are not rotated. The rotation is the released code's exactly: each segment's
  frequencies are *repeated* (``[f, f]``) rather than interleaved (``[f0, f0, f1, f1, ...]``)
  across the rotated pairs, the "subtle bug" the official code keeps for its checkpoints.
"""

from __future__ import annotations

import functools
import math

import torch

from jepakit.ops import sincos_pos_embed_1d


def as_grid3(grid: tuple[int, ...]) -> tuple[int, int, int]:
    """A 3-D grid; a 2-D (H', W') grid is one time step (images are T' = 1)."""
    if len(grid) == 2:
        return 1, int(grid[0]), int(grid[1])
    if len(grid) != 3:
        raise ValueError(f"expected a 2-D or 3-D token grid, got {tuple(grid)}")
    return int(grid[0]), int(grid[1]), int(grid[2])


def grid_coords(grid: tuple[int, ...]) -> torch.Tensor:
    """[N, 3] float64 (t, h, w) of every token of the grid, in raster order."""
    t, h, w = as_grid3(grid)
    axes = [torch.arange(n, dtype=torch.float64) for n in (t, h, w)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def sincos_widths(dim: int, uniform_power: bool = False) -> tuple[int, int, int]:
    """(t, h, w) channel counts of the 3-D sin-cos table before it is cut to ``dim``."""
    if uniform_power:
        each = int(math.ceil(dim / 6) * 2)
        return each, each, each
    return dim // 2, dim // 4, dim // 4


@functools.lru_cache(maxsize=16)
def sincos_pos_embed_3d(dim: int, grid: tuple[int, ...], uniform_power: bool = False,
                        ) -> torch.Tensor:
    """V-JEPA's fixed table [N, dim] (fp32, on the CPU, cached: do not modify it)."""
    with torch.device("cpu"):  # never cache a table made under a meta-device context
        return _sincos_3d(dim, grid, uniform_power)


def _sincos_3d(dim: int, grid: tuple[int, ...], uniform_power: bool) -> torch.Tensor:
    wt, wh, ww = sincos_widths(dim, uniform_power)
    if min(wt, wh, ww) % 2:
        raise ValueError(f"3-D sin-cos positions need a width divisible by 8, got {dim}")
    coords = grid_coords(grid)
    table = torch.cat([sincos_pos_embed_1d(wt, coords[:, 0]),
                       sincos_pos_embed_1d(wh, coords[:, 1]),
                       sincos_pos_embed_1d(ww, coords[:, 2])], dim=1)
    return table[:, :dim].float()


def rope_segment(head_dim: int) -> int:
    """Dims rotated per axis: ``2 * ((head_dim // 3) // 2)`` (the official split)."""
    return 2 * ((head_dim // 3) // 2)


@functools.lru_cache(maxsize=16)
def rope_tables(head_dim: int, grid: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) [N, head_dim] fp32 for every token of the grid: rotary angles on the
    three segments, cos 1 and sin 0 on the unrotated tail (on the CPU, cached)."""
    with torch.device("cpu"):
        return _rope_tables(head_dim, grid)


def _rope_tables(head_dim: int, grid: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    seg = rope_segment(head_dim)
    if seg == 0:
        raise ValueError(f"3-D RoPE needs a head dim of at least 6, got {head_dim}")
    coords = grid_coords(grid)
    omega = 1.0 / 10000 ** (torch.arange(seg // 2, dtype=torch.float64) / (seg / 2.0))
    angles = [coords[:, axis:axis + 1] * omega for axis in range(3)]  # 3 x [N, seg/2]
    n = coords.shape[0]
    rest = torch.zeros(n, head_dim - 3 * seg, dtype=torch.float64)
    full = torch.cat([torch.cat([a, a], dim=1) for a in angles] + [rest], dim=1)
    cos, sin = full.cos(), full.sin()
    return cos.float(), sin.float()


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) over the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` [B, heads, K, head_dim] rotated by per-token tables [B or 1, K, head_dim]."""
    cos, sin = cos.unsqueeze(1).to(x.dtype), sin.unsqueeze(1).to(x.dtype)
    return x * cos + rotate_pairs(x) * sin
