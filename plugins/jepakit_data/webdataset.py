"""Stream training images from WebDataset tar shards (local, brace patterns, ``pipe:``)."""

from __future__ import annotations

from typing import Any

import attrs
import webdataset as wds
from attrs import validators as v

from .transforms import train_transform


@attrs.define
class WebDatasetConfig:
    urls: str | list[str] = ""
    """Shard URLs: a brace pattern (``train-{000000..000099}.tar``), a list, or ``pipe:`` commands."""
    crop_scale: tuple[float, float] = (0.3, 1.0)
    horizontal_flip: bool = False
    color_jitter: float = 0.0
    gaussian_blur: bool = False
    shuffle_buffer: int = attrs.field(default=1000, validator=v.ge(0))
    image_keys: str = "jpg;jpeg;png;webp"
    label_key: str = "cls"
    image_size: int | None = None


def _with_label(sample: tuple[Any, Any]) -> tuple[Any, int]:
    image, label = sample
    return image, int(label) if label is not None else -1


def make_webdataset(config: WebDatasetConfig, *, image_size: int, in_chans: int = 3,
                    seed: int = 0) -> wds.WebDataset:
    if not config.urls:
        raise ValueError("data.params.urls is empty: point it at your shards")
    transform = train_transform(config.image_size or image_size, config.crop_scale, in_chans,
                                config.horizontal_flip, config.color_jitter, config.gaussian_blur)
    return (
        wds.WebDataset(config.urls, shardshuffle=100, nodesplitter=wds.split_by_node,
                       seed=seed, empty_check=False)
        .shuffle(config.shuffle_buffer)
        .decode("pil")
        .to_tuple(config.image_keys, config.label_key, missing_is_error=False)
        .map_tuple(transform, lambda x: x)
        .map(_with_label)
    )
