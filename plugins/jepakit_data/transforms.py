"""I-JEPA's augmentation: RandomResizedCrop(scale 0.3-1.0) and ImageNet
normalisation only (Assran et al., 2023, appendix); flips, colour jitter and
blur exist but are off, as in the paper."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(
    image_size: int,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    in_chans: int = 3,
    horizontal_flip: bool = False,
    color_jitter: float = 0.0,
    gaussian_blur: bool = False,
) -> Callable[..., torch.Tensor]:
    steps: list = [T.RandomResizedCrop(image_size, scale=crop_scale,
                                       interpolation=T.InterpolationMode.BICUBIC)]
    if horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter > 0:
        s = color_jitter
        steps.append(T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8))
        steps.append(T.RandomGrayscale(p=0.2))
    if gaussian_blur:
        steps.append(T.RandomApply([T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0))], p=0.5))
    steps.append(T.Grayscale(1) if in_chans == 1 else T.Lambda(lambda im: im.convert("RGB")))
    steps.append(T.ToTensor())
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else ((0.5,), (0.5,))
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)
