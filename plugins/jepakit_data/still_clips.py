"""Images as still clips, so one video model trains on images and videos alike.

When the engine passes ``num_frames`` (the encoder is a video encoder), the image
datasets return each image repeated over ``num_frames`` frames, [C, T, H, W]: the
one-frame-clip treatment of images in V-JEPA 2.1 (the encoder's tubelets then all see
the same picture). Views, when a recipe asks for them, become still clips one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from jepakit.errors import ConfigError


def still(x: Any, num_frames: int) -> Any:
    """[C, H, W] -> [C, num_frames, H, W] (a list of views: each of them)."""
    if isinstance(x, list):
        return [still(view, num_frames) for view in x]
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise TypeError(f"expected an image tensor [C, H, W], got {getattr(x, 'shape', type(x))}")
    return x.unsqueeze(1).expand(x.shape[0], num_frames, *x.shape[1:])


def check_frames(num_frames: int | None) -> int | None:
    if num_frames is not None and num_frames < 1:
        raise ConfigError(f"num_frames must be at least 1, got {num_frames}")
    return num_frames


class StillClipDecoder:
    """A streamed source's decoder whose images (or views) come out as still clips.

    Picklable (it runs in loader workers); the wrapped decoder's attributes show through."""

    def __init__(self, decoder: Callable[[Any], tuple[Any, int]], num_frames: int) -> None:
        self.decoder = decoder
        self.num_frames = num_frames

    def __call__(self, raw: Any) -> tuple[Any, int]:
        image, label = self.decoder(raw)
        return still(image, self.num_frames), label

    def __getattr__(self, name: str) -> Any:
        if name == "decoder" or name.startswith("__"):  # unpickling
            raise AttributeError(name)
        return getattr(self.decoder, name)


class StillClips(Dataset):
    """A map-style image dataset whose items come out as ``(still clip, label)``.

    Everything else (``classes``, ``state_dict`` of a view dataset, ...) is the base's;
    ``held_out`` gives still clips too."""

    def __init__(self, base: Any, num_frames: int) -> None:
        self.base = base
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = self.base[index]
        return still(image, self.num_frames), label

    def held_out(self, num_samples: int) -> StillClips:
        return StillClips(self.base.held_out(num_samples), self.num_frames)

    def __getattr__(self, name: str) -> Any:
        if name == "base" or name.startswith("__"):  # unpickling; no __getitems__ bypass
            raise AttributeError(name)
        return getattr(self.base, name)
