"""Moving Fashion-MNIST: one or two Fashion-MNIST items gliding and bouncing over a
64x64 frame, written as real H.264 videos into shards, labelled by the first item's class.

Moving MNIST (Srivastava et al., 2015) with Fashion-MNIST's items, so a video JEPA can be
trained and probed on real encoded video on a machine that can download nothing:
``jepakit shards make --format moving-fashion-mnist OUT --split train --count N``
(``make data-video``). Each item starts at a random place with a random direction and
speed (1 to 3 pixels per frame) and bounces off the frame's edges; two items overlap
by their brighter pixel. Train clips draw their items from the Fashion-MNIST training
split, test clips from its test split, so no test item is seen in training.

Clip ``i`` depends only on ``(seed, split, i)``: the same command writes the same videos,
byte for byte, with any number of worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from jepakit.data.formats import FASHION_MNIST_CLASSES, FASHION_MNIST_DIRS, fashion_mnist
from jepakit.data.shards import Sample, ShardFormat, Source
from jepakit.errors import JepakitError

from .video_encode import encode_video

FRAME = 64
SPEED = (1.0, 3.0)
"""Pixels per frame (inclusive range)."""


@attrs.frozen
class ClipJob:
    """Everything a worker needs to render and encode one clip (picklable)."""

    index: int
    items: tuple[np.ndarray, ...]
    """One or two 28x28 uint8 items; the first gives the label."""
    label: int
    seed: int
    frames: int
    fps: int


def trajectory(rng: np.random.Generator, frames: int, room: int) -> np.ndarray:
    """[frames, 2] integer top-left corners of an item moving in a straight line at a random
    speed from a random start, reflected at ``0`` and ``room``."""
    start = rng.uniform(0, room, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*SPEED)
    velocity = speed * np.array([np.sin(angle), np.cos(angle)])
    travelled = (start + velocity * np.arange(frames)[:, None]) % (2 * room)
    positions = np.where(travelled > room, 2 * room - travelled, travelled)
    return np.rint(positions).astype(int)


def render(job: ClipJob) -> np.ndarray:
    """The clip's frames [T, 64, 64] uint8."""
    rng = np.random.default_rng([job.seed, job.index, 1])
    video = np.zeros((job.frames, FRAME, FRAME), np.uint8)
    for item in job.items:
        size = item.shape[0]
        for t, (y, x) in enumerate(trajectory(rng, job.frames, FRAME - size)):
            window = video[t, y:y + size, x:x + size]
            np.maximum(window, item, out=window)
    return video


def _clip(job: ClipJob) -> Sample:
    return Sample(f"{job.index:08d}", "mp4", encode_video(render(job), fps=job.fps), job.label)


def plan(images: np.ndarray, labels: np.ndarray, count: int, seed: int, split: str,
         frames: int, fps: int) -> list[ClipJob]:
    """The clips to write: which items (one or two, drawn with a seeded RNG) go in each."""
    split_key = {"train": 0, "test": 1}[split]
    jobs = []
    for i in range(count):
        rng = np.random.default_rng([seed, split_key, i, 0])
        picks = rng.choice(len(images), size=int(rng.integers(1, 3)), replace=False)
        jobs.append(ClipJob(i, tuple(images[p] for p in picks), int(labels[picks[0]]),
                            seed * 2 + split_key, frames, fps))
    return jobs


def open_moving_fmnist(src: Path | None, options: Mapping[str, Any]) -> Source:
    """The ``moving-fashion-mnist`` shard format: ``src`` holds the Fashion-MNIST IDX files
    (default: Debian's dataset-fashion-mnist folder)."""
    folder = src or Path(FASHION_MNIST_DIRS[0])
    split = str(options.get("split", "train"))
    images, labels = fashion_mnist(folder, split)
    def given(key: str, default: int) -> int:
        value = options.get(key)
        return default if value is None else int(value)

    count, frames, fps = given("count", len(labels)), given("frames", 16), given("fps", 8)
    seed = given("seed", 0)
    if count < 1 or frames < 1 or fps < 1:
        raise JepakitError(f"moving-fashion-mnist: --count, --frames and --fps must be at least "
                           f"1, got {count}, {frames}, {fps}")
    jobs = plan(images, labels, int(count), seed, split, frames, fps)
    return Source(jobs, _clip, len(jobs), list(FASHION_MNIST_CLASSES),
                  f"Moving Fashion-MNIST {split} ({len(jobs)} clips of {frames} frames at "
                  f"{fps} fps, items from {folder})", unit="video", dataset="video_webdataset")


FORMAT = ShardFormat("moving-fashion-mnist", open_moving_fmnist,
                     "clips of one or two Fashion-MNIST items moving over 64x64 frames")
