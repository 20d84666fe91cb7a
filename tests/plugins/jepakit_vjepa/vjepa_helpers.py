"""Shared by the V-JEPA tests: a tiny zip-pairing masker (a stand-in until the real
``vjepa_multiblock`` is installed) and direct re-statements of the official vjepa2
position code (MIT; restated from its behaviour, not copied)."""

from __future__ import annotations

import attrs
import numpy as np
import torch

import jepakit
from jepakit.contracts import Masks
from jepakit.registry import Registry


@attrs.define
class TinyConfig:
    sizes: tuple[int, ...] = (3, 12)
    """Target tokens per configuration (each configuration one target, the rest context)."""


class TinyZipMasker:
    """Configuration c: a random target of ``sizes[c]`` tokens and the complement as context."""

    pairing = "zip"
    conformance = {"grid_ranks": (2, 3)}
    """Any grid (the masker kit's declaration of the ranks a masker handles)."""

    def __init__(self, config: TinyConfig) -> None:
        self.config = config

    def __call__(self, batch_size: int, patch_grid: tuple[int, ...], generator: torch.Generator) -> Masks:
        n = 1
        for g in patch_grid:
            n *= int(g)
        context, targets = [], []
        for k in self.config.sizes:
            order = torch.stack([torch.randperm(n, generator=generator) for _ in range(batch_size)])
            targets.append(order[:, :k].sort(1).values)
            context.append(order[:, k:].sort(1).values)
        return Masks(context=context, targets=targets)


class _TinyMaskerPlugin:
    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [jepakit.Component("tiny_zip", TinyZipMasker, TinyConfig)]


def registry() -> Registry:
    """The installed plugins plus the tiny masker; a stand-in ``vjepa_multiblock`` too while
    the real one is not installed, so the kit can run the method's registered example."""
    class Standin:
        @jepakit.hookimpl
        def jepakit_maskers(self):
            return [jepakit.Component("vjepa_multiblock", TinyZipMasker, TinyConfig)]

    base = Registry()
    plugins: list[object] = [_TinyMaskerPlugin()]
    if "vjepa_multiblock" not in base.components("masker"):
        plugins.append(Standin())
    return Registry(plugins=plugins)



def official_sincos_3d(dim: int, grid_size: int, grid_depth: int) -> np.ndarray:
    """The jepa/vjepa2 ``get_3d_sincos_pos_embed`` (uniform_power False), restated."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gd, gh, gw = np.arange(grid_depth, dtype=float), np.arange(grid_size, dtype=float), \
        np.arange(grid_size, dtype=float)
    grid_h, grid_d, grid_w = np.meshgrid(gh, gd, gw)  # "xy" indexing: shape (d, h, w)
    table = np.concatenate([one_d(dim // 2, grid_d), one_d(dim // 4, grid_h),
                            one_d(dim // 4, grid_w)], axis=1)
    return table[:, :dim]


def official_rotate(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """vjepa2 ``rotate_queries_or_keys`` restated: frequencies repeated, not interleaved."""
    d = x.shape[-1]
    omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
    freq = pos.double()[..., None] * omega
    sin, cos = freq.sin().repeat(1, 2).float(), freq.cos().repeat(1, 2).float()
    pairs = x.unflatten(-1, (-1, 2))
    y = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + y * sin


def official_rope_3d(x: torch.Tensor, ids: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """vjepa2 ``RoPEAttention``'s rotation of q or k [heads, N, head_dim] at token ids [N]."""
    _, h, w = grid
    frame, rest = ids // (h * w), ids % (h * w)
    height, width = rest // w, rest % w
    seg = 2 * ((x.shape[-1] // 3) // 2)
    parts = [official_rotate(x[..., i * seg:(i + 1) * seg], p)
             for i, p in enumerate((frame, height, width))]
    return torch.cat(parts + [x[..., 3 * seg:]], dim=-1)


