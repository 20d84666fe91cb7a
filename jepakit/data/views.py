"""Several augmented views of each sample (multi-crop), built in the loader workers.

A recipe lists view groups (``views:``), e.g. LeJEPA's 2 global crops of 224 px at
scale 0.3-1 and 6 local crops of 98 px at scale 0.05-0.3 (Balestriero and LeCun,
arXiv 2511.08544, following DINO's multi-crop, Caron et al. 2021). Each group has its
own crop and augmentation list, taken from a fixed menu built on
torchvision.transforms.v2 with DINO's strengths as defaults. The first group holds
the global views: a method that needs them (LeJEPA's invariance centre) reads them
first.

Randomness is keyed, not drawn from a worker's running RNG: :class:`MultiView`
takes a per-sample seed, so the views of a sample depend only on where it sits in
the run (see :mod:`jepakit.data.viewsources`), and a resumed run crops exactly as the
uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from attrs import validators as v
from PIL import Image
from torchvision.transforms import v2

from jepakit.errors import ConfigError, did_you_mean

AUGMENTATIONS = ("flip", "color_jitter", "grayscale", "blur", "solarize")
"""The menu, applied in the order a group lists them (after the crop, before normalising)."""


def _known_augmentations(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    for name in value:
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}{did_you_mean(name, AUGMENTATIONS)}; "
                             f"valid names: {', '.join(AUGMENTATIONS)}", attribute)


def _interval(low: float, high: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
        if not low < value[0] <= value[1] <= high:
            raise ValueError(f"need {low} < low <= high <= {high}, got {list(value)}", attribute)
    return check


_prob = [v.ge(0.0), v.le(1.0)]


def _jitter(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if min(value) < 0 or value[3] > 0.5:
        raise ValueError(f"need strengths >= 0 and hue <= 0.5, got {list(value)}", attribute)


@attrs.define
class ViewGroup:
    """``count`` views of ``size`` px, each a random resized crop of ``crop_scale`` of the
    image area followed by the ``augment`` list. Defaults are DINO's strengths."""

    size: int = attrs.field(validator=v.gt(0))
    count: int = attrs.field(default=1, validator=v.gt(0))
    crop_scale: tuple[float, float] = attrs.field(default=(0.3, 1.0), validator=_interval(0, 1))
    """Crop area as a fraction of the image (LeJEPA: global 0.3-1, local 0.05-0.3)."""
    crop_ratio: tuple[float, float] = attrs.field(default=(3 / 4, 4 / 3),
                                                  validator=_interval(0.05, 20))
    augment: list[str] = attrs.field(factory=lambda: list(AUGMENTATIONS),
                                     validator=_known_augmentations)
    """Names from the menu: flip, color_jitter, grayscale, blur, solarize."""
    flip_prob: float = attrs.field(default=0.5, validator=_prob)
    jitter: tuple[float, float, float, float] = attrs.field(default=(0.4, 0.4, 0.2, 0.1),
                                                            validator=_jitter)
    """Brightness, contrast, saturation, hue strengths of the colour jitter."""
    jitter_prob: float = attrs.field(default=0.8, validator=_prob)
    grayscale_prob: float = attrs.field(default=0.2, validator=_prob)
    blur_prob: float = attrs.field(default=0.5, validator=_prob)
    blur_sigma: tuple[float, float] = attrs.field(default=(0.1, 2.0), validator=_interval(1e-3, 100))
    solarize_prob: float = attrs.field(default=0.2, validator=_prob)
    solarize_threshold: float = attrs.field(default=0.5, validator=_prob)
    """Pixels above this fraction of the maximum are inverted (DINO: 128 of 255)."""


class SeparableBlur:
    """Gaussian blur with probability ``prob`` and sigma uniform in ``sigma``, as two 1-D
    passes (rows, then columns) over +-3 sigma of the drawn sigma, reflected borders.
    torchvision's GaussianBlur convolves with the full 2-D kernel sized for the largest
    sigma: 1.5x slower at sigma 2 on a 224 px view, more for small sigmas
    (benchmarks/views_cost.py)."""

    def __init__(self, prob: float, sigma: tuple[float, float]) -> None:
        self.prob = prob
        self.sigma = sigma

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.prob < 1 and float(torch.rand(())) >= self.prob:
            return image
        sigma = float(torch.empty(()).uniform_(*self.sigma))
        height, width = image.shape[-2:]
        radius = min(int(np.ceil(3 * sigma)), height - 1, width - 1)
        if radius < 1:
            return image
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = kernel / kernel.sum()
        channels = image.shape[-3]
        x = image.float().reshape(1, channels, height, width)
        x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
        x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
        x = x.reshape(image.shape)
        if image.dtype == torch.uint8:
            return x.round_().clamp_(0, 255).to(torch.uint8)
        return x.to(image.dtype)


def _augmentation(name: str, group: ViewGroup, unit: float) -> Any:
    """One menu entry; ``unit`` is the pixel maximum (255 for uint8, 1 for float)."""
    if name == "flip":
        return v2.RandomHorizontalFlip(group.flip_prob)
    if name == "color_jitter":
        b, c, s, h = group.jitter
        return v2.RandomApply([v2.ColorJitter(b, c, s, h)], p=group.jitter_prob)
    if name == "grayscale":
        return v2.RandomGrayscale(group.grayscale_prob)
    if name == "blur":
        return SeparableBlur(group.blur_prob, group.blur_sigma)
    if name == "solarize":
        return v2.RandomSolarize(group.solarize_threshold * unit, p=group.solarize_prob)
    raise AssertionError(name)  # ViewGroup's validator lists the menu


def check_views(groups: Sequence[ViewGroup], where: str = "views") -> None:
    """One-line errors for a view list that the per-group validators cannot see."""
    if not groups:
        raise ConfigError(f"{where}: give at least one view group (the global views first)")
    for i, group in enumerate(groups):
        for name in group.augment:
            if name not in AUGMENTATIONS:
                raise ConfigError(f"{where}[{i}].augment: unknown augmentation {name!r}"
                                  f"{did_you_mean(name, AUGMENTATIONS)}; valid names: "
                                  f"{', '.join(AUGMENTATIONS)}")


class MultiView:
    """PIL image, uint8 tensor or float tensor [C, H, W] in [0, 1] -> list of normalised
    float view tensors, group by group in order. Picklable: it runs in loader workers."""

    def __init__(self, groups: Sequence[ViewGroup], *, in_chans: int,
                 mean: Sequence[float], std: Sequence[float]) -> None:
        check_views(groups)
        if len(mean) != in_chans or len(std) != in_chans:
            raise ConfigError(f"views: normalisation has {len(mean)} mean and {len(std)} std "
                              f"values for {in_chans} channel(s)")
        self.groups = list(groups)
        self.mode = "L" if in_chans == 1 else "RGB"
        self.counts = [g.count for g in self.groups]
        self.crops = [v2.RandomResizedCrop(g.size, scale=g.crop_scale, ratio=g.crop_ratio,
                                           interpolation=v2.InterpolationMode.BICUBIC,
                                           antialias=True) for g in self.groups]
        # photometric steps run on uint8 pixels when the input has them (2-3x cheaper
        # than float for blur and jitter), then one conversion and the normalisation
        to_float = v2.ToDtype(torch.float32, scale=True)
        normalize = v2.Normalize(list(mean), list(std))
        self.finish_uint8 = [v2.Compose([*(_augmentation(n, g, 255.0) for n in g.augment),
                                         to_float, normalize]) for g in self.groups]
        self.finish_float = [v2.Compose([*(_augmentation(n, g, 1.0) for n in g.augment),
                                         normalize]) for g in self.groups]

    @property
    def num_views(self) -> int:
        return sum(self.counts)

    def __call__(self, image: Image.Image | torch.Tensor, seed: int | None = None
                 ) -> list[torch.Tensor]:
        """The views; with ``seed`` they depend on it alone (the global torch RNG is
        forked and restored), without it they draw from the global RNG."""
        if seed is None:
            return self._views(image)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._views(image)

    def _views(self, image: Image.Image | torch.Tensor) -> list[torch.Tensor]:
        if isinstance(image, Image.Image) and image.mode != self.mode:
            image = image.convert(self.mode)
        if isinstance(image, torch.Tensor) and image.is_floating_point():
            finishes = self.finish_float
        elif isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
            finishes = self.finish_uint8
        elif isinstance(image, Image.Image):
            finishes = self.finish_uint8
        else:
            raise TypeError(f"MultiView takes a PIL image or a uint8/float tensor, got "
                            f"{type(image).__name__} {getattr(image, 'dtype', '')}")
        views = []
        for count, crop, finish in zip(self.counts, self.crops, finishes):
            for _ in range(count):
                view = crop(image)  # first: on PIL's uint8 pixels it is cheapest
                if isinstance(view, Image.Image):
                    view = v2.functional.pil_to_tensor(view)
                views.append(finish(view).as_subclass(torch.Tensor).contiguous())
        return views

    def __repr__(self) -> str:
        return f"MultiView({[(g.count, g.size) for g in self.groups]})"
