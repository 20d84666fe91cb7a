"""jepakit's shipped data sources, registered like any third-party plugin."""

from __future__ import annotations

import jepakit

from .imagefolder import ImageFolderConfig, make_imagefolder
from .synthetic import SyntheticConfig
from .synthetic_source import make_synthetic
from .synthetic_video import SyntheticVideoConfig, make_synthetic_video
from .video_webdataset import VideoWebDatasetConfig, make_video_webdataset
from .webdataset import WebDatasetConfig, make_webdataset


@jepakit.hookimpl
def jepakit_datasets() -> list[jepakit.Component]:
    return [
        jepakit.Component("synthetic", make_synthetic, SyntheticConfig),
        jepakit.Component("synthetic_video", make_synthetic_video, SyntheticVideoConfig),
        jepakit.Component("webdataset", make_webdataset, WebDatasetConfig),
        jepakit.Component("video_webdataset", make_video_webdataset, VideoWebDatasetConfig),
        jepakit.Component("imagefolder", make_imagefolder, ImageFolderConfig),
    ]


@jepakit.hookimpl
def jepakit_shard_formats() -> list:
    """``jepakit shards make --format videofolder | moving-fashion-mnist``."""
    from . import moving_fmnist, video_shards

    return [video_shards.FORMAT, moving_fmnist.FORMAT]
