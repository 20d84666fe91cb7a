"""Write WebDataset shards from an image folder, a flat folder or Fashion-MNIST,
or from any source format a plugin adds (``jepakit_shard_formats``: the data plugin's
video folders and Moving Fashion-MNIST).

Every image is decoded once before it is written, so broken files are caught
here (skipped and listed, in the index too) instead of in the middle of a
training run. Samples are shuffled with a fixed seed before writing, because
folders are sorted by class and a streaming shuffle buffer cannot undo a shard
that holds a single class. Each shard is written under a temporary name and
renamed when complete, so an interrupted run never leaves a shard that looks
whole; the index is written last.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import webdataset as wds
from PIL import Image
from tqdm import tqdm

from jepakit.data.decode import decode_image, describe
from jepakit.data.formats import (
    FASHION_MNIST_CLASSES,
    fashion_mnist,
    is_fashion_mnist_dir,
    scan_folder,
)
from jepakit.data.index import INDEX_NAME, ShardIndex
from jepakit.errors import JepakitError

SourceFormat = Literal["auto", "imagefolder", "files", "fashion-mnist"]
FORMATS: tuple[str, ...] = ("auto", "imagefolder", "files", "fashion-mnist")
_EXT = {"jpeg": "jpg", "tiff": "tif"}


@attrs.define
class Sample:
    key: str
    ext: str
    data: bytes
    label: int | None


@attrs.define
class Source:
    """What to write: picklable jobs in output order, and the function that turns one
    into a sample (run in worker processes, so the order, and the bytes, never depend
    on how many there are)."""

    jobs: list[Any]
    prepare: Callable[[Any], Sample | tuple[str, str]]
    """A module-level function: a job -> a :class:`Sample`, or ``(path, reason)`` for an
    input that was skipped."""
    total: int
    classes: list[str]
    description: str
    unit: str = "img"
    """What one job is, for the progress bar."""
    dataset: str = "webdataset"
    """The data source that reads the shards written (recorded in the index)."""


@attrs.define
class ShardFormat:
    """A source format a plugin adds to ``jepakit shards make`` (hook ``jepakit_shard_formats``)."""

    name: str
    open: Callable[[Path | None, Mapping[str, Any]], Source]
    """``open(src, options)``: the jobs to write; ``src`` is None when the command gave none,
    ``options`` holds the command's split, seed, count, frames and fps."""
    help: str
    detect: Callable[[Path], bool] | None = None
    """Whether a folder is in this format, for ``--format auto``."""


def plugin_formats() -> dict[str, ShardFormat]:
    """The source formats installed plugins add, by name."""
    from jepakit.registry import default_registry

    found: dict[str, ShardFormat] = {}
    for specs in default_registry().hook().jepakit_shard_formats():
        for spec in specs:
            if spec.name in FORMATS or spec.name in found:
                raise JepakitError(f"two shard formats are named '{spec.name}'")
            found[spec.name] = spec
    return found


def verify_image(data: bytes) -> str | None:
    """None if PIL decodes ``data`` completely, else why not."""
    if not data:
        return "empty file"
    try:
        decode_image(data, mode="RGB")
    except Exception as exc:  # PIL raises many types for broken files
        return describe(exc)
    return None


def _folder_item(job: tuple[str, int, str, int | None]) -> Sample | tuple[str, str]:
    """Read and check one file (or pass on why it was left out)."""
    kind, i, path, label = job
    if kind == "ignored":
        return path, "image outside the class subfolders"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return path, f"unreadable: {exc}"
    problem = verify_image(data)
    if problem:
        return path, problem
    ext = Path(path).suffix.lower().lstrip(".")
    return Sample(f"{i:08d}", _EXT.get(ext, ext), data, label)


def folder_source(src: Path, layout: Literal["auto", "imagefolder", "files"], seed: int) -> Source:
    scan = scan_folder(src, layout)
    order = list(range(len(scan.files)))
    random.Random(seed).shuffle(order)
    jobs: list[Any] = [("ignored", -1, str(path), None) for path in scan.ignored]
    jobs += [("file", i, str(scan.files[j]), None if scan.labels is None else scan.labels[j])
             for i, j in enumerate(order)]
    kind = f"{len(scan.classes)} class folders" if scan.classes else "a flat folder"
    return Source(jobs, _folder_item, len(jobs), scan.classes, f"{src} ({kind})")


def _fmnist_item(job: tuple[int, np.ndarray, int]) -> Sample:
    i, pixels, label = job
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return Sample(f"{i:08d}", "png", buffer.getvalue(), label)


def fashion_mnist_source(src: Path, split: str, seed: int) -> Source:
    images, labels = fashion_mnist(src, split)
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    jobs = [(i, images[j], int(labels[j])) for i, j in enumerate(order)]
    return Source(jobs, _fmnist_item, len(jobs), list(FASHION_MNIST_CLASSES),
                  f"{src} (Fashion-MNIST {split})")


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def open_source(src: str | Path | None, fmt: str = "auto", split: str = "train",
                seed: int = 0, options: Mapping[str, Any] | None = None) -> Source:
    extra = plugin_formats() if fmt not in FORMATS or fmt == "auto" else {}
    if fmt not in FORMATS and fmt not in extra:
        raise JepakitError(f"unknown format '{fmt}'; choose from "
                           f"{', '.join([*FORMATS, *extra])}")
    settings = {"split": split, "seed": seed, **(options or {})}
    if fmt in extra:
        return extra[fmt].open(None if src is None else Path(src), settings)
    if src is None:
        raise JepakitError(f"--format {fmt} reads a source folder: give SRC before OUT")
    path = Path(src)
    if not path.exists():
        raise JepakitError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise JepakitError(f"{path}: not a folder (give the folder that holds the images)")
    if fmt == "fashion-mnist" or (fmt == "auto" and is_fashion_mnist_dir(path)):
        return fashion_mnist_source(path, split, seed)
    claimed = [f for f in extra.values() if f.detect is not None and f.detect(path)]
    if fmt == "auto" and claimed:
        return claimed[0].open(path, settings)
    layout: Literal["auto", "imagefolder", "files"] = fmt  # type: ignore[assignment]
    return folder_source(path, layout, seed)


def prepare_output(out: Path, prefix: str, overwrite: bool) -> None:
    """Refuse a non-empty OUT unless ``overwrite``; then clear old shards and index."""
    if out.exists() and not out.is_dir():
        raise JepakitError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise JepakitError(f"{out} is not empty; pass --overwrite to replace its shards")
        for old in [*out.glob(f"{prefix}-*.tar"), *out.glob(f".{prefix}-*.tmp"), out / INDEX_NAME]:
            old.unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".jepakit-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise JepakitError(f"cannot write to {out}: {exc.strerror or exc}") from None


class _ShardSink:
    """Numbered shards of at most ``shard_size`` samples, each renamed into place when done."""

    def __init__(self, out: Path, prefix: str, shard_size: int) -> None:
        self.out, self.prefix, self.shard_size = out, prefix, shard_size
        self.shards: list[dict[str, object]] = []
        self._writer: wds.TarWriter | None = None
        self._file: io.BufferedWriter | None = None
        self._count = 0

    def _name(self) -> str:
        return f"{self.prefix}-{len(self.shards):06d}.tar"

    def write(self, sample: Sample) -> None:
        if self._writer is None:
            self._file = open(self.out / f".{self._name()}.tmp", "wb")  # noqa: SIM115
            self._writer = wds.TarWriter(self._file, encoder=False, mtime=0)  # int: no pax header
        record = {"__key__": sample.key, sample.ext: sample.data}
        if sample.label is not None:
            record["cls"] = str(sample.label).encode()
        self._writer.write(record)
        self._count += 1
        if self._count >= self.shard_size:
            self.finish_shard()

    def finish_shard(self) -> None:
        if self._writer is None or self._file is None:
            return
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        name = self._name()
        os.replace(self.out / f".{name}.tmp", self.out / name)
        self.shards.append({"name": name, "samples": self._count})
        self._writer, self._file, self._count = None, None, 0


def prepared(source: Source, workers: int) -> Iterator[Sample | tuple[str, str]]:
    """``source.prepare`` over the jobs, in order, on ``workers`` processes."""
    if workers <= 1 or len(source.jobs) < 2:
        yield from map(source.prepare, source.jobs)
        return
    chunk = max(1, min(64, len(source.jobs) // (4 * workers)))
    with multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                     else "spawn").Pool(workers) as pool:
        yield from pool.imap(source.prepare, source.jobs, chunksize=chunk)


def make_shards(src: str | Path | None, out: str | Path, *, shard_size: int = 1000,
                fmt: str = "auto", split: str = "train", overwrite: bool = False,
                prefix: str = "shard", seed: int = 0, progress: bool = True,
                workers: int | None = None, options: Mapping[str, Any] | None = None
                ) -> ShardIndex:
    """Convert ``src`` into ``out/{prefix}-NNNNNN.tar`` shards and ``out/index.json``.

    ``workers`` processes (default: the cores) read, check and encode the samples; the
    output is the same, byte for byte, for any number of them. ``options`` go to a
    plugin's format (:class:`ShardFormat`)."""
    if shard_size < 1:
        raise JepakitError(f"--shard-size must be at least 1, got {shard_size}")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise JepakitError(f"--workers must be at least 1, got {workers}")
    source = open_source(src, fmt, split, seed, options)
    out = Path(out)
    prepare_output(out, prefix, overwrite)
    sink = _ShardSink(out, prefix, shard_size)
    skipped: list[dict[str, str]] = []
    bar = tqdm(total=source.total, unit=source.unit, desc="shards", disable=not progress,
               dynamic_ncols=True)
    try:
        for item in prepared(source, workers):
            if isinstance(item, tuple):
                skipped.append({"path": item[0], "reason": item[1]})
            else:
                sink.write(item)
            bar.update(1)
        sink.finish_shard()
    finally:
        bar.close()
    if not sink.shards:
        raise JepakitError(f"{source.description}: none of its {source.total} input(s) could "
                           "be decoded; no shards written")
    index = ShardIndex(shards=sink.shards, classes=source.classes, source=source.description,
                       skipped=skipped, dataset=source.dataset)
    tmp = out / f".{INDEX_NAME}.tmp"
    tmp.write_text(index.to_json())
    os.replace(tmp, out / INDEX_NAME)
    return index
