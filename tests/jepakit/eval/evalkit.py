"""Tiny labelled data sets and encoders for the evaluation tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "recipes" / "ijepa_tiny.yaml"
TINY_ENCODER = (
    "encoder.params.image_size=16", "encoder.params.patch_size=4", "encoder.params.embed_dim=32",
    "encoder.params.depth=4", "encoder.params.num_heads=2", "predictor.params.embed_dim=16",
    "predictor.params.depth=1", "predictor.params.num_heads=2",
)


def picture(label: int, seed: int, size: int = 16) -> np.ndarray:
    """Class 0: a bright square in the middle; class 1: bright stripes; noise on top."""
    rng = np.random.default_rng(seed)
    img = rng.random((size, size)) * 60
    if label == 0:
        img[size // 4: 3 * size // 4, size // 4: 3 * size // 4] += 180
    else:
        img[::3, :] += 180
    return np.clip(img, 0, 255).astype("uint8")


def class_folder(root: Path, per_class: int = 12, seed: int = 0, rgb: bool = True) -> Path:
    for label, name in enumerate(("square", "stripes")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.fromarray(picture(label, seed * 1000 + 100 * label + i))
            (image.convert("RGB") if rgb else image).save(root / name / f"{i:03d}.png")
    return root


def train_test_folders(root: Path, train_per_class: int, test_per_class: int) -> Path:
    """``root/train`` and ``root/test`` class folders drawn with different seeds."""
    class_folder(root / "train", train_per_class, seed=0)
    class_folder(root / "test", test_per_class, seed=1)
    return root


def flat_folder(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(picture(i % 2, i)).save(root / f"{i:03d}.png")
    return root


def idx_folder(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    """The four Fashion-MNIST IDX files, with tiny 28x28 two-class images."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 2
        images = np.stack([picture(int(lab), i, 28) for i, lab in enumerate(labels)])
        head = struct.pack(">HBB3I", 0, 8, 3, n, 28, 28)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(head + images.tobytes()))
        head = struct.pack(">HBBI", 0, 8, 1, n)
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(head + labels.astype("uint8").tobytes()))
    return root
