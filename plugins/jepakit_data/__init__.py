"""jepakit's shipped data sources, registered like any third-party plugin."""

from __future__ import annotations

import jepakit

from .imagefolder import ImageFolderConfig, make_imagefolder
from .synthetic import SyntheticConfig
from .synthetic_source import make_synthetic
from .synthetic_video import SyntheticVideoConfig, make_synthetic_video
from .webdataset import WebDatasetConfig, make_webdataset


@jepakit.hookimpl
def jepakit_datasets() -> list[jepakit.Component]:
    return [
        jepakit.Component("synthetic", make_synthetic, SyntheticConfig),
        jepakit.Component("synthetic_video", make_synthetic_video, SyntheticVideoConfig),
        jepakit.Component("webdataset", make_webdataset, WebDatasetConfig),
        jepakit.Component("imagefolder", make_imagefolder, ImageFolderConfig),
    ]
