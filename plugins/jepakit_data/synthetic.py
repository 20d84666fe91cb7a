"""Deterministic procedural images, so training and tests need no files.

Ten classes of shapes and textures (discs, squares, rings, crosses, triangles,
stripes in three orientations, checkerboards, gradients) with random colours,
positions, sizes and frequencies. Image ``i`` depends only on ``(seed, i)``.
"""

from __future__ import annotations

import math

import attrs
import torch
from attrs import validators as v
from torch.utils.data import Dataset

CLASSES = (
    "disc", "square", "ring", "cross", "triangle",
    "h_stripes", "v_stripes", "d_stripes", "checker", "gradient",
)


@attrs.define
class SyntheticConfig:
    num_samples: int = attrs.field(default=10_000, validator=v.gt(0))
    image_size: int | None = None
    """Defaults to the encoder's image size."""
    noise: float = attrs.field(default=0.1, validator=v.ge(0))


class SyntheticImages(Dataset):
    """Map-style dataset of ``(image [C,H,W] float, label int)``."""

    classes = CLASSES

    def __init__(self, config: SyntheticConfig, *, image_size: int | tuple[int, int] = 32,
                 in_chans: int = 3, seed: int = 0) -> None:
        size = config.image_size or image_size
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.in_chans = in_chans
        self.num_samples = config.num_samples
        self.noise = config.noise
        self.seed = seed

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        label = int(torch.randint(len(CLASSES), (), generator=g))
        return self.render(label, g), label

    def render(self, label: int, g: torch.Generator) -> torch.Tensor:
        h, w = self.size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")

        def r(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        cy, cx, size = r(-0.4, 0.4), r(-0.4, 0.4), r(0.25, 0.6)
        dy, dx = ys - cy, xs - cx
        freq, phase, angle = r(3, 8), r(0, 2 * math.pi), r(0, math.pi)
        name = CLASSES[label]
        if name == "disc":
            shape = dy**2 + dx**2 < size**2
        elif name == "square":
            shape = (dy.abs() < size) & (dx.abs() < size)
        elif name == "ring":
            rad = (dy**2 + dx**2).sqrt()
            shape = (rad < size) & (rad > size * 0.6)
        elif name == "cross":
            shape = ((dy.abs() < size * 0.25) & (dx.abs() < size)) | (
                (dx.abs() < size * 0.25) & (dy.abs() < size))
        elif name == "triangle":
            shape = (dy < size) & (dy > -size + 2 * dx.abs())
        elif name == "h_stripes":
            shape = torch.sin(ys * freq * math.pi + phase) > 0
        elif name == "v_stripes":
            shape = torch.sin(xs * freq * math.pi + phase) > 0
        elif name == "d_stripes":
            shape = torch.sin((xs * math.cos(angle) + ys * math.sin(angle)) * freq * math.pi) > 0
        elif name == "checker":
            shape = (torch.sin(xs * freq * math.pi) > 0) ^ (torch.sin(ys * freq * math.pi) > 0)
        else:  # gradient
            shape = None
        fg = torch.rand(self.in_chans, 1, 1, generator=g) * 2 - 1
        bg = torch.rand(self.in_chans, 1, 1, generator=g) * 2 - 1
        if shape is None:
            t = ((xs * math.cos(angle) + ys * math.sin(angle)) + 1.5) / 3
            img = bg + (fg - bg) * t
        else:
            img = torch.where(shape, fg, bg)
        img = img + self.noise * torch.randn(self.in_chans, h, w, generator=g)
        return img.float()
