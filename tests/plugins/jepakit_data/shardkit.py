"""Small helpers for the data tests: tiny image folders, shards, and simulated ranks/workers."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jepakit.data import stream
from jepakit.data.badsamples import tally
from jepakit.data.shards import make_shards
from jepakit.data.stream import RawSample


def write_image(path: Path, seed: int, size: int = 10, fmt: str | None = None) -> Path:
    """A small random RGB image; format from the suffix unless given."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size + 2, 3)) * 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt or ("JPEG" if path.suffix == ".jpg" else "PNG"))
    return path


def image_folder(root: Path, classes: tuple[str, ...] = ("a", "b", "c"), per_class: int = 4
                 ) -> Path:
    """``root/<class>/<i>.png|jpg``: per_class images in each class folder."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.{'jpg' if i % 2 else 'png'}", seed=100 * c + i)
    return root


def png_bytes(seed: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size, size)) * 255).astype("uint8")).save(buffer, format="PNG")
    return buffer.getvalue()


class KeyDecoder:
    """Decode to the sample key (coverage tests need identities, not pixels)."""

    def __call__(self, raw: RawSample) -> str:
        return str(raw["__key__"])


@contextlib.contextmanager
def as_worker(monkeypatch, rank: int, world: int, worker: int, workers: int) -> Iterator[None]:
    """Pretend to be DataLoader worker ``worker`` of ``workers`` on rank ``rank`` of ``world``."""
    with monkeypatch.context() as m:
        m.setenv("RANK", str(rank))
        m.setenv("WORLD_SIZE", str(world))
        m.setattr(stream, "worker_and_count", lambda: (worker, workers))
        yield


# Fixtures shared by the data-source test modules (a second conftest.py would shadow
# tests/conftest.py for `from conftest import ...`).
@pytest.fixture(autouse=True)
def clean_tally():  # imported by the data-source test modules (autouse there)
    """Each test starts and ends with no good/bad sample counts pending."""
    tally.drain()
    yield
    tally.drain()


def labelled_shards(root: Path) -> Path:
    """12 labelled images (3 classes) in 6 shards of 2 under ``root``; the folder holding
    index.json."""
    image_folder(root / "src", per_class=4)
    make_shards(root / "src", root / "out", shard_size=2, progress=False)
    return root / "out"
