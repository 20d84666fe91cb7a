"""Tiny videos for the video data tests: frames whose brightness encodes their index."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from jepakit_data.video_encode import encode_video

BASE, STEP = 8, 7
"""Frame ``i`` is uniformly ``BASE + STEP * i`` (up to 35 frames), which survives H.264."""


def indexed_frames(count: int, size: int = 16) -> np.ndarray:
    """[count, size, size] gray frames; frame i has brightness BASE + STEP * i."""
    assert BASE + STEP * (count - 1) <= 255
    return np.stack([np.full((size, size), BASE + STEP * i, np.uint8) for i in range(count)])


def indexed_video(count: int, size: int = 16, ext: str = "mp4", fps: int = 8) -> bytes:
    return encode_video(indexed_frames(count, size), fps=fps, ext=ext)


def frame_numbers(frames: torch.Tensor, unit: float = 1.0) -> list[int]:
    """The index of each frame [T, ...] (pixel values scaled by ``unit`` to 0-255)."""
    means = frames.reshape(frames.shape[0], -1).float().mean(1) * unit
    return [round((float(m) - BASE) / STEP) for m in means]


def video_folder(root: Path, per_class: int = 2, frames: int = 12) -> Path:
    """``root/<class>/<i>.mp4|webm``: per_class short videos in classes a and b."""
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ext = "webm" if i % 2 else "mp4"
            (root / name / f"{i}.{ext}").write_bytes(indexed_video(frames - c, ext=ext))
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (gzipped), as Fashion-MNIST ships."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                        *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_fashion_mnist(root: Path, train: int = 12, test: int = 5) -> Path:
    """Four IDX files of bright random 28x28 items; item i has label i % 10, and test items
    are dimmer (100-150) than train items (200-255), so a clip tells its split."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, low in (("train", train, 200), ("t10k", test, 100)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(low, low + 50, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root
