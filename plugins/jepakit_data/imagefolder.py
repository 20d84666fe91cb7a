"""Train straight from a folder of images, for users without shards.

Class subfolders give labels (sorted names, as torchvision's ImageFolder);
a flat folder gives unlabelled images (label -1). Each file is one unit of
:class:`jepakit.data.stream.StreamingDataset`, so splitting over ranks and
workers, exact or resampled epochs, the checkpointable position and the
bad-image accounting are the same as for shards. Fine for small sets; for
ImageNet-scale data, shards read far faster (one sequential read per shard).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
from attrs import validators as v

from jepakit.data.decode import ImageDecoder
from jepakit.data.formats import FolderLayout, scan_folder
from jepakit.data.stream import RawSample, StreamingDataset, bad_marker
from jepakit.data.views import ViewGroup
from jepakit.data.viewsources import ViewDecoder
from jepakit.errors import ConfigError, JepakitError

from .still_clips import StillClipDecoder, check_frames
from .transforms import ImageStreamConfig


@attrs.define
class ImageFolderConfig(ImageStreamConfig):
    root: str = ""
    """The folder: class subfolders, or images directly inside."""
    layout: FolderLayout = "auto"
    """auto: class subfolders if any hold images, else a flat folder; files: every image
    below root, unlabelled."""
    shuffle_buffer: int = attrs.field(default=0, validator=v.ge(0))
    """Files are already shuffled one by one each epoch; a buffer adds nothing."""


class ImageFiles(StreamingDataset):
    """Units are file paths; labels come from the scan."""

    def __init__(self, files: list[Path], labels: list[int] | None, classes: list[str],
                 decoder: ImageDecoder | StillClipDecoder, options: ImageFolderConfig, seed: int = 0,
                 root: Path | None = None) -> None:
        super().__init__([str(f) for f in files], decoder, options, seed=seed)
        self.labels = dict(zip(self.units, labels)) if labels is not None else {}
        self.classes = classes
        self.root = root

    def read_unit(self, unit: str) -> Iterator[RawSample]:
        path = Path(unit)
        key = str(path.relative_to(self.root)) if self.root else path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield bad_marker(unit, key, f"unreadable: {exc}")
            return
        sample: RawSample = {"__key__": key, "__url__": unit, path.suffix.lower().lstrip("."): data}
        if unit in self.labels:
            sample["cls"] = self.labels[unit]
        yield sample


def make_imagefolder(config: ImageFolderConfig, *, image_size: int, in_chans: int = 3,
                     seed: int = 0, views: list[ViewGroup] | None = None,
                     num_frames: int | None = None) -> ImageFiles:
    """Samples are ``(image, label)``, or ``(list of views, label)`` when ``views`` is given;
    with ``num_frames`` (a video encoder), each image is a still clip [C, T, H, W]."""
    if not config.root:
        raise ConfigError("data.params.root is empty: point it at your image folder")
    try:
        scan = scan_folder(config.root, config.layout)
    except JepakitError as exc:
        raise ConfigError(f"data.params.root: {exc}") from None
    extensions = sorted({f.suffix.lower().lstrip(".") for f in scan.files})
    decoder = (ImageDecoder(config.transform(image_size, in_chans), in_chans, extensions)
               if views is None else
               ViewDecoder(config.views(views, in_chans), seed, in_chans, extensions))
    frames = check_frames(num_frames)
    return ImageFiles(scan.files, scan.labels, scan.classes,
                      decoder if frames is None else StillClipDecoder(decoder, frames), config,
                      seed=seed, root=Path(config.root))
