"""Small tensor operations that encoders, predictors and the engine share."""

from __future__ import annotations

import torch


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[b, idx[b]]`` for every b: [B, N, D] and [B, K] -> [B, K, D].

    Flattens to one ``index_select`` instead of expanding ``idx`` to [B, K, D]
    int64 (what ``torch.gather`` needs), which for wide models is a large tensor.
    """
    b, n, d = x.shape
    offsets = torch.arange(b, device=idx.device).unsqueeze(1) * n
    flat = (idx + offsets).reshape(-1)
    return x.reshape(b * n, d).index_select(0, flat).view(b, idx.shape[1], d)


def sincos_pos_embed_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Transformer sin-cos embedding of 1-D positions: [P] -> [P, dim]."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_pos_embed_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding [h*w, dim] in raster order.

    Half the channels encode the row, half the column (MAE / I-JEPA convention:
    the first half from the column coordinate, the second from the row).
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    h, w = grid
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    emb_w = sincos_pos_embed_1d(dim // 2, cols.reshape(-1))
    emb_h = sincos_pos_embed_1d(dim // 2, rows.reshape(-1))
    return torch.cat([emb_w, emb_h], dim=1).float()


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, C*p*p] in raster order, channel-major within a patch.

    The layout matches a ``Conv2d(kernel=stride=p)`` weight viewed as [D, C*p*p],
    so a linear layer on these rows equals the usual convolutional patch embedding.
    """
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)


@torch.no_grad()
def ema_update_(target: torch.nn.Module, online: torch.nn.Module, momentum: float) -> None:
    """``target = momentum * target + (1 - momentum) * online`` for every parameter,
    in one fused ``_foreach_lerp_`` instead of a Python loop per parameter."""
    weight = 1.0 - momentum
    if weight == 0.0:
        return
    src = [p.detach() for p in online.parameters()]
    torch._foreach_lerp_(list(target.parameters()), src, weight)
