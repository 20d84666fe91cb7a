"""I-JEPA's augmentation: RandomResizedCrop(scale 0.3-1.0) and ImageNet
normalisation only (Assran et al., 2023, appendix); flips, colour jitter and
blur exist but are off, as in the paper."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from attrs import validators as v
from PIL import Image
from torchvision import transforms as T

from jepakit.config import check
from jepakit.data.stream import StreamOptions
from jepakit.data.views import MultiView, ViewGroup

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.449,)
GRAY_STD = (0.226,)
"""ImageNet's statistics averaged over channels, for one-channel inputs."""


class ConvertMode:
    """PIL mode conversion as a picklable transform (a lambda would not cross to workers)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == self.mode else image.convert(self.mode)

    def __repr__(self) -> str:
        return f"ConvertMode({self.mode!r})"


def train_transform(
    image_size: int,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    in_chans: int = 3,
    horizontal_flip: bool = False,
    color_jitter: float = 0.0,
    gaussian_blur: bool = False,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Callable[..., torch.Tensor]:
    steps: list = [ConvertMode("L" if in_chans == 1 else "RGB"),
                   T.RandomResizedCrop(image_size, scale=crop_scale,
                                       interpolation=T.InterpolationMode.BICUBIC)]
    if horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter > 0:
        s = color_jitter
        steps.append(T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8))
        if in_chans == 3:
            steps.append(T.RandomGrayscale(p=0.2))
    if gaussian_blur:
        steps.append(T.RandomApply([T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0))], p=0.5))
    steps.append(T.ToTensor())
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else (GRAY_MEAN, GRAY_STD)
    steps.append(T.Normalize(mean or default_mean, std or default_std))
    return T.Compose(steps)


@attrs.define
class ImageStreamConfig(StreamOptions):
    """What every streamed image dataset shares: coverage (StreamOptions) and augmentation."""

    image_size: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Crop size; defaults to the encoder's image size."""
    crop_scale: tuple[float, float] = (0.3, 1.0)
    horizontal_flip: bool = False
    color_jitter: float = attrs.field(default=0.0, validator=v.ge(0))
    gaussian_blur: bool = False
    mean: tuple[float, ...] | None = None
    """Normalisation mean per channel (default ImageNet's; its channel average for 1 channel)."""
    std: tuple[float, ...] | None = None

    def __attrs_post_init__(self) -> None:
        check(0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
              f"data.params.crop_scale: need 0 < low <= high <= 1, got {list(self.crop_scale)}")
        check((self.mean is None) == (self.std is None),
              "data.params: set both mean and std, or neither")

    def normalisation(self, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.mean is not None and len(self.mean) != in_chans:
            check(False, f"data.params.mean has {len(self.mean)} values for {in_chans} channel(s)")
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        return (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else (GRAY_MEAN, GRAY_STD)

    def views(self, groups: list[ViewGroup], in_chans: int) -> MultiView:
        """The recipe's views, with this source's normalisation; they replace the single
        crop and its augmentation settings above."""
        mean, std = self.normalisation(in_chans)
        return MultiView(groups, in_chans=in_chans, mean=mean, std=std)

    def transform(self, image_size: int, in_chans: int) -> Callable[..., torch.Tensor]:
        if self.mean is not None and len(self.mean) != in_chans:
            check(False, f"data.params.mean has {len(self.mean)} values for {in_chans} channel(s)")
        return train_transform(self.image_size or image_size, self.crop_scale, in_chans,
                               self.horizontal_flip, self.color_jitter, self.gaussian_blur,
                               self.mean, self.std)
