"""Deterministic procedural images, so training and tests need no files.

Each of the ten classes is a kind of object: a hue of its own, a shape (disc, square,
ring, cross, triangle) and a fill (solid or striped). An image scatters two to four
copies of its class's object, of random sizes and shades, at random places over a
background of two regions in two other hues of the same palette. So:

* the patch position predicts nothing about a patch's content, while the rest of
  the image does (the other copies show the object's colour): content a JEPA must
  learn to predict a masked block, instead of the positional shortcut
  (docs/monitoring.md);
* the class is not in the colour histogram: three palette hues are present and the
  class's is the one of the small scattered objects, not of a background region.
  Features that only average the colours of the patches, as those of a randomly
  initialised network largely do, cannot tell which hue is the objects', so a linear
  probe on them stays near chance (0.10) while a trained encoder's rises (README,
  docs/monitoring.md).

Image ``i`` depends only on ``(seed, i)``; :meth:`SyntheticImages.held_out` gives
images past the dataset's own indices, for evaluation.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable

import attrs
import torch
from attrs import validators as v
from torch.utils.data import Dataset

SHAPES = ("disc", "square", "ring", "cross", "triangle")
FILLS = ("solid", "striped")
NUM_CLASSES = 10
CLASSES = tuple(f"{FILLS[c // 5]}_{SHAPES[c % 5]}_hue{c}" for c in range(NUM_CLASSES))
"""solid_disc_hue0 ... striped_triangle_hue9: hue ``c / 10`` of the colour circle."""


def class_parts(label: int) -> tuple[str, str, float]:
    """(shape, fill, hue) of a class's object."""
    return SHAPES[label % len(SHAPES)], FILLS[label // len(SHAPES)], label / NUM_CLASSES


@attrs.define
class SyntheticConfig:
    num_samples: int = attrs.field(default=10_000, validator=v.gt(0))
    image_size: int | None = None
    """Defaults to the encoder's image size."""
    noise: float = attrs.field(default=0.1, validator=v.ge(0))
    objects: tuple[int, int] = (2, 4)
    """Copies of the class's object per image (inclusive range)."""
    scale: float = attrs.field(default=1.0, validator=v.gt(0))
    """Multiplies the pixel values (about [-1, 1]). Small patches need more than 1: a ViT's
    patch embedding, initialised for 768-pixel patches, otherwise lets the sin-cos
    positions outweigh the content of a 48-pixel patch (the positional shortcut,
    docs/monitoring.md), as ``std`` a tenth of the data's does in recipes/ijepa_fmnist.yaml."""

    def __attrs_post_init__(self) -> None:
        lo, hi = self.objects
        if not 1 <= lo <= hi:
            raise ValueError(f"objects: expected [min, max] with 1 <= min <= max, got "
                             f"{list(self.objects)}")


class SyntheticImages(Dataset):
    """Map-style dataset of ``(image [C,H,W] float, label int)``."""

    classes = CLASSES

    def __init__(self, config: SyntheticConfig, *, image_size: int | tuple[int, int] = 32,
                 in_chans: int = 3, seed: int = 0, first: int = 0) -> None:
        size = config.image_size or image_size
        self.config = config
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.in_chans = in_chans
        self.num_samples = config.num_samples
        self.noise = config.noise
        self.seed = seed
        self.first = first

    def __len__(self) -> int:
        return self.num_samples

    def held_out(self, num_samples: int) -> SyntheticImages:
        """``num_samples`` images this dataset never yields (the indices after its own)."""
        config = attrs.evolve(self.config, num_samples=num_samples)
        return SyntheticImages(config, image_size=self.size, in_chans=self.in_chans,
                               seed=self.seed, first=self.first + self.num_samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.first + index)
        label = int(torch.randint(NUM_CLASSES, (), generator=g))
        return self.render(label, g), label

    def render(self, label: int, g: torch.Generator) -> torch.Tensor:
        h, w = self.size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")

        def r(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        def pick(options: list[int]) -> int:
            return options[int(torch.randint(len(options), (), generator=g))]

        shape, fill, hue = class_parts(label)
        first = pick([c for c in range(NUM_CLASSES) if c != label])
        second = pick([c for c in range(NUM_CLASSES) if c not in (label, first)])
        angle, offset = r(0, 2 * math.pi), r(-0.5, 0.5)
        side = xs * math.cos(angle) + ys * math.sin(angle) > offset
        img = torch.where(side, self._shade(first / NUM_CLASSES, r),
                          self._shade(second / NUM_CLASSES, r))
        lo, hi = self.config.objects
        for _ in range(lo + int(torch.randint(hi - lo + 1, (), generator=g))):
            cy, cx, size = r(-0.8, 0.8), r(-0.8, 0.8), r(0.2, 0.35)
            mask = _shape(shape, ys - cy, xs - cx, size)
            if fill == "striped":
                tilt, freq = r(0, math.pi), r(5, 7)
                mask = mask & (torch.sin((xs * math.cos(tilt) + ys * math.sin(tilt))
                                         * freq * math.pi) > -0.3)
            img = torch.where(mask, self._shade(hue, r), img)
        img = img * 2 - 1 + self.noise * torch.randn(self.in_chans, h, w, generator=g)
        return (img * self.config.scale).float()

    def _shade(self, hue: float, r: Callable[[float, float], float]) -> torch.Tensor:
        """A colour of ``hue`` (jittered) with random saturation and value: backgrounds and
        objects share these ranges, so only the arrangement tells them apart."""
        rgb = colorsys.hsv_to_rgb((hue + r(-0.02, 0.02)) % 1.0, r(0.6, 1.0), r(0.6, 1.0))
        if self.in_chans == 1:
            return torch.tensor([0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]]).view(1, 1, 1)
        return torch.tensor((rgb * self.in_chans)[: self.in_chans]).view(-1, 1, 1)


def _shape(name: str, dy: torch.Tensor, dx: torch.Tensor, size: float) -> torch.Tensor:
    """A boolean mask of the named shape centred where ``dy = dx = 0``."""
    if name == "disc":
        return dy**2 + dx**2 < size**2
    if name == "square":
        return (dy.abs() < size * 0.85) & (dx.abs() < size * 0.85)
    if name == "ring":
        rad = (dy**2 + dx**2).sqrt()
        return (rad < size) & (rad > size * 0.55)
    if name == "cross":
        return ((dy.abs() < size * 0.3) & (dx.abs() < size)) | (
            (dx.abs() < size * 0.3) & (dy.abs() < size))
    return (dy < size * 0.8) & (dy > -size + 2 * dx.abs())  # triangle
