"""Image sources on disk: a folder of class subfolders, a flat folder, Fashion-MNIST IDX files.

Shared by ``jepakit shards make`` and the ``imagefolder`` dataset, so both read
a folder the same way.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Literal

import attrs
import numpy as np

from jepakit.data.decode import IMAGE_EXTENSIONS
from jepakit.errors import JepakitError

FolderLayout = Literal["auto", "imagefolder", "files"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_SPLITS = {"train": "train", "test": "t10k"}
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
"""Where Debian's ``dataset-fashion-mnist`` package puts the four IDX files."""


def is_image(path: Path) -> bool:
    return (path.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS
            and not path.name.startswith("."))


@attrs.define
class FolderScan:
    """Image files found under a root, with labels when the layout has classes."""

    files: list[Path]
    labels: list[int] | None
    classes: list[str]
    ignored: list[Path] = attrs.field(factory=list)
    """Images outside any class folder in an imagefolder layout."""


def _images(directory: Path, recursive: bool) -> list[Path]:
    pattern = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in pattern if p.is_file() and is_image(p)
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def scan_folder(root: str | Path, layout: FolderLayout = "auto") -> FolderScan:
    """Class subfolders (each a label, names sorted) or a flat folder of images.

    ``auto`` picks class subfolders when any subfolder holds images, else the
    images directly in ``root``; ``files`` takes every image below ``root``, unlabelled.
    """
    root = Path(root)
    if not root.exists():
        raise JepakitError(f"{root}: no such folder")
    if not root.is_dir():
        raise JepakitError(f"{root}: not a folder")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    class_dirs = [d for d in subdirs if _images(d, recursive=True)] if layout != "files" else []
    if layout == "imagefolder" and not class_dirs:
        raise JepakitError(f"{root}: no class subfolders with images (imagefolder layout)")
    if class_dirs:
        files: list[Path] = []
        labels: list[int] = []
        for label, d in enumerate(class_dirs):
            found = _images(d, recursive=True)
            files += found
            labels += [label] * len(found)
        return FolderScan(files, labels, [d.name for d in class_dirs],
                          ignored=_images(root, recursive=False))
    files = _images(root, recursive=layout == "files")
    if not files:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        raise JepakitError(f"{root}: no images found (looked for {kinds})")
    return FolderScan(files, None, [])


# -- Fashion-MNIST (IDX) -----------------------------------------------------------------
def _open_maybe_gz(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format): unsigned bytes, any number of dimensions."""
    try:
        data = _open_maybe_gz(path)
    except (OSError, EOFError) as exc:
        raise JepakitError(f"{path}: unreadable ({exc})") from None
    if len(data) < 4 or data[0:2] != b"\0\0" or data[2] != 0x08:
        raise JepakitError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise JepakitError(f"{path}: holds {body.size} bytes, its header says {dims} (truncated?)")
    return body.reshape(dims)


def find_idx_pair(directory: Path, split: str) -> tuple[Path, Path]:
    """The images and labels files of one split, ``.gz`` or not."""
    prefix = FASHION_MNIST_SPLITS.get(split)
    if prefix is None:
        raise JepakitError(f"unknown split '{split}'; choose from {sorted(FASHION_MNIST_SPLITS)}")
    found = []
    for kind, dims in (("images", 3), ("labels", 1)):
        names = [f"{prefix}-{kind}-idx{dims}-ubyte{ext}" for ext in (".gz", "")]
        path = next((directory / n for n in names if (directory / n).is_file()), None)
        if path is None:
            raise JepakitError(
                f"{directory}: no {names[0]}; Fashion-MNIST needs the four IDX files "
                "(train/t10k images and labels, from github.com/zalandoresearch/fashion-mnist "
                "or Debian's dataset-fashion-mnist package)"
            )
        found.append(path)
    return found[0], found[1]


def is_fashion_mnist_dir(directory: Path) -> bool:
    """Whether ``directory`` holds Fashion-MNIST's training IDX files."""
    try:
        find_idx_pair(directory, "train")
        return True
    except JepakitError:
        return False


def fashion_mnist(directory: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 28, 28] uint8 and labels [N] of one split."""
    directory = Path(directory)
    if not directory.is_dir():
        raise JepakitError(f"{directory}: no such folder")
    images_path, labels_path = find_idx_pair(directory, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise JepakitError(f"{directory}: {images_path.name} {images.shape} and "
                           f"{labels_path.name} {labels.shape} do not match")
    return images, labels
