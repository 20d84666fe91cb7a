"""Labelled images for evaluation: shards with ``cls``, an image folder of class
subfolders, or the Fashion-MNIST IDX files, read in a fixed order with a
deterministic transform.

Evaluation must see every image the same way every time (features are cached),
so there is no random crop here: the image is resized so its shorter side is
``image_size / crop_ratio``, centre-cropped to ``image_size`` and normalised as
in training. ``crop_ratio`` 1.0 keeps the whole image (small images such as
Fashion-MNIST); 0.875 is the usual ImageNet protocol.

A path names either one labelled set (split at random into train and test when
no test set is given) or a pair: a folder with ``train/`` and ``test/`` (or
``val/``) inside, or the Fashion-MNIST IDX folder, whose two splits are used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info
from torchvision import transforms as T

from jepakit.data import tar
from jepakit.data.decode import IMAGE_EXTENSIONS, ImageDecoder, decode_image
from jepakit.data.formats import (
    FASHION_MNIST_CLASSES,
    fashion_mnist,
    is_fashion_mnist_dir,
    scan_folder,
)
from jepakit.data.index import INDEX_NAME, read_index, shard_urls
from jepakit.data.stream import SampleError
from jepakit.errors import JepakitError

Format = Literal["auto", "shards", "imagefolder", "fashion-mnist"]
FORMATS: tuple[str, ...] = ("auto", "shards", "imagefolder", "fashion-mnist")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.449,)
GRAY_STD = (0.226,)
"""The data plugin's normalisation defaults (plugins/jepakit_data/transforms.py), repeated
here because the engine never imports a plugin by name."""

TEST_DIRS = ("test", "val", "validation")


class UnlabelledError(JepakitError):
    """Evaluation data without labels."""


def eval_transform(image_size: int, in_chans: int, mean: tuple[float, ...] | None = None,
                   std: tuple[float, ...] | None = None, crop_ratio: float = 1.0
                   ) -> Callable[[Image.Image], torch.Tensor]:
    """Resize (bicubic) + centre crop + normalise: the deterministic twin of training's
    RandomResizedCrop + normalise."""
    if not 0 < crop_ratio <= 1:
        raise JepakitError(f"crop ratio must be in (0, 1], got {crop_ratio}")
    if mean is None or std is None:
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3 else (GRAY_MEAN, GRAY_STD)
    resize = max(image_size, round(image_size / crop_ratio))
    return T.Compose([
        T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(image_size),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


@attrs.define
class LabelledSource:
    """One labelled set on disk: what it is, where, and how to read it in units."""

    kind: Literal["shards", "imagefolder", "fashion-mnist"]
    path: str
    units: list[Any]
    """Shard URLs, lists of (file, label), or (start, stop) ranges of the IDX arrays."""
    classes: list[str]
    num_samples: int | None
    split: str | None = None
    """Fashion-MNIST: which split."""

    def describe(self) -> str:
        split = f" ({self.split})" if self.split else ""
        return f"{self.kind} {self.path}{split}"


# -- resolving a path -----------------------------------------------------------------
def _is_shard_spec(path: str) -> bool:
    return path.endswith(".json") or ".tar" in path or "{" in path or path.startswith("pipe:")


def _shards(spec: str) -> LabelledSource:
    import webdataset as wds

    path = Path(spec)
    if path.is_dir():
        index_path = path / INDEX_NAME
        if index_path.is_file():
            spec = str(index_path)
        else:
            tars = sorted(str(p) for p in path.iterdir() if p.name.endswith((".tar", ".tar.gz")))
            if not tars:
                raise JepakitError(f"{path}: no {INDEX_NAME} and no .tar shards")
            return LabelledSource("shards", str(path), tars, [], None)
    if spec.endswith(".json"):
        index = read_index(spec)
        urls = shard_urls(spec, index)
        missing = [u for u in urls if ":" not in u.split("/", 1)[0] and not Path(u).is_file()]
        if missing:
            raise JepakitError(f"{spec}: {len(missing)} shard(s) listed in the index are missing, "
                               f"e.g. {missing[0]}")
        return LabelledSource("shards", spec, urls, list(index.classes), index.num_samples)
    urls = list(wds.shardlists.expand_urls(spec))
    missing = [u for u in urls if ":" not in u.split("/", 1)[0] and not Path(u).is_file()]
    if missing:
        raise JepakitError(f"shards not found: {missing[0]}"
                           + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return LabelledSource("shards", spec, urls, [], None)


def _imagefolder(path: Path) -> LabelledSource:
    scan = scan_folder(path, "auto")
    if scan.labels is None:
        raise UnlabelledError(f"{path}: a flat folder of images has no labels; evaluation needs "
                              "class subfolders (one folder per class)")
    pairs = list(zip(scan.files, scan.labels))
    units = [pairs[i:i + 256] for i in range(0, len(pairs), 256)]  # work for many workers
    return LabelledSource("imagefolder", str(path), units, scan.classes, len(pairs))


def _fmnist(path: Path, split: str) -> LabelledSource:
    images, _ = fashion_mnist(path, split)
    n = len(images)
    units = [(i, min(i + 5000, n)) for i in range(0, n, 5000)]
    return LabelledSource("fashion-mnist", str(path), units, list(FASHION_MNIST_CLASSES), n,
                          split=split)


def resolve(path: str | Path, fmt: Format = "auto", split: str = "train") -> LabelledSource:
    """One labelled set. ``split`` only matters for the Fashion-MNIST IDX folder."""
    spec = str(path)
    if fmt not in FORMATS:
        raise JepakitError(f"unknown data format '{fmt}'; choose from {', '.join(FORMATS)}")
    p = Path(spec)
    if fmt == "shards" or (fmt == "auto" and _is_shard_spec(spec)):
        return _shards(spec)
    if not p.exists():
        raise JepakitError(f"evaluation data not found: {spec}")
    if fmt == "fashion-mnist":
        return _fmnist(p, split)
    if fmt == "imagefolder":
        return _imagefolder(p)
    if p.is_file():
        raise JepakitError(f"{spec}: expected a folder, shards (.tar, a brace pattern or an "
                           "index.json) or a Fashion-MNIST IDX folder")
    if (p / INDEX_NAME).is_file() or any(q.name.endswith(".tar") for q in p.iterdir()):
        return _shards(spec)
    if is_fashion_mnist_dir(p):
        return _fmnist(p, split)
    return _imagefolder(p)


def _test_dir(path: Path) -> Path | None:
    for name in TEST_DIRS:
        if (path / name).is_dir():
            return path / name
    return None


def resolve_pair(data: str | Path, test_data: str | Path | None = None, fmt: Format = "auto"
                 ) -> tuple[LabelledSource, LabelledSource | None]:
    """(train, test) sets; test is None when the caller must hold out part of train."""
    if test_data is not None:
        return resolve(data, fmt, "train"), resolve(test_data, fmt, "test")
    p = Path(str(data))
    if p.is_dir() and (p / "train").is_dir() and (test := _test_dir(p)) is not None \
            and not (p / INDEX_NAME).is_file():
        return resolve(p / "train", fmt, "train"), resolve(test, fmt, "test")
    train = resolve(data, fmt, "train")
    if train.kind == "fashion-mnist":
        return train, resolve(data, "fashion-mnist", "test")
    return train, None


# -- reading ------------------------------------------------------------------------
class EvalImages(IterableDataset):
    """``(image tensor, label)`` of a :class:`LabelledSource` in a fixed order; units are
    dealt to DataLoader workers in turn. Undecodable samples are skipped and counted."""

    def __init__(self, source: LabelledSource, transform: Callable[[Image.Image], torch.Tensor],
                 in_chans: int, limit: int | None = None,
                 decoder: Callable[[dict[str, Any]], tuple[torch.Tensor, int]] | None = None
                 ) -> None:
        self.source = source
        self.transform = transform
        self.in_chans = in_chans
        self.mode = "L" if in_chans == 1 else "RGB"
        self.limit = limit
        self.decoder: Callable[[dict[str, Any]], tuple[Any, int]] = decoder or ImageDecoder(
            transform, in_chans, IMAGE_EXTENSIONS, "cls")  # decoder: clips of a video encoder

    def __len__(self) -> int:
        n = self.source.num_samples
        if n is None:
            raise TypeError("size unknown")
        return n if self.limit is None else min(n, self.limit)

    def expected(self) -> int | None:
        try:
            return len(self)
        except TypeError:
            return self.limit

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        units = self.source.units[worker::workers]
        budget = None if self.limit is None else -(-self.limit // workers)
        count = 0
        for unit in units:
            for sample in self._read(unit):
                if budget is not None and count >= budget:
                    return
                count += 1
                yield sample

    def _read(self, unit: Any) -> Iterator[tuple[torch.Tensor, int]]:
        for load in self.loaders(unit):
            yield load()

    def loaders(self, unit: Any) -> Iterator[Callable[[], tuple[torch.Tensor, int]]]:
        """One call per sample of ``unit``, in order, each decoding it (``(empty, -2)``
        when undecodable); skipping a sample is not calling it (a resumed extraction)."""
        kind = self.source.kind
        if kind == "shards":
            yield from self._shard_loaders(unit)
        elif kind == "imagefolder":
            for file, label in unit:
                yield functools.partial(self._load_file, file, int(label))
        else:
            start, stop = unit
            images, labels = _fmnist_arrays(self.source.path, self.source.split or "train")
            for i in range(start, stop):
                yield functools.partial(self._load_array, images[i], int(labels[i]))

    def _load_file(self, file: str, label: int) -> tuple[torch.Tensor, int]:
        try:
            image = decode_image(Path(file).read_bytes(), self.mode)
        except Exception:  # unreadable or undecodable file: skipped
            return torch.empty(0), -2
        return self.transform(image), label

    def _load_array(self, array: np.ndarray, label: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(array, mode="L")
        if self.mode != "L":
            image = image.convert(self.mode)
        return self.transform(image), label

    def _shard_loaders(self, url: str) -> Iterator[Callable[[], tuple[torch.Tensor, int]]]:
        import webdataset as wds

        stream = wds.gopen(url)
        try:
            for sample in tar.Samples(tar.open_stream(stream)):
                yield functools.partial(self._decode, sample)
        except tar.TarCorrupt as exc:
            raise JepakitError(f"{url}: {exc}") from None
        finally:
            stream.close()

    def _decode(self, raw: dict[str, Any]) -> tuple[torch.Tensor, int]:
        try:
            return self.decoder(raw)
        except SampleError:
            return torch.empty(0), -2


def holds_images(source: LabelledSource) -> bool:
    """Whether ``source`` holds images: folders and IDX files do; shards do when their
    first sample has an image (video shards hold encoded videos)."""
    if source.kind != "shards" or not source.units:
        return True
    import webdataset as wds

    stream = wds.gopen(source.units[0])
    try:
        first = next(iter(tar.Samples(tar.open_stream(stream))), {})
    except tar.TarCorrupt as exc:
        raise JepakitError(f"{source.units[0]}: {exc}") from None
    finally:
        stream.close()
    return any(k in first for k in IMAGE_EXTENSIONS)


_FMNIST_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def _fmnist_arrays(path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    key = (path, split)
    if key not in _FMNIST_CACHE:
        _FMNIST_CACHE[key] = fashion_mnist(path, split)
    return _FMNIST_CACHE[key]


def collate_eval(samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack good samples; the count of bad ones (label -2) rides along."""
    good = [s for s in samples if s[1] != -2]
    bad = len(samples) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), bad
    return (torch.stack([s[0] for s in good]),
            torch.as_tensor([s[1] for s in good], dtype=torch.long), bad)
