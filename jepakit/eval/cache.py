"""Extracted features on disk: raw fp16 arrays plus a JSON header, memory-mapped when
read, written as a stream that resumes after a kill.

One extraction is a folder::

    header.json  {"format": "jepakit-features", "version": 1, "row_shape": [D] or [N, D],
                  "rows": R, "capacity": C, "complete": bool, "classes": [...],
                  "bad_keys": [...], "sorted": bool}
    x.f16        C rows of float16, C order (only the first R are valid)
    y.i64        C labels, int64
    k.i64        C sample keys, int64: ``unit index << 32 | position in the unit``

The cache is data: reading it parses JSON and maps raw numbers, nothing else (no pickle),
and a header that does not describe files of the right sizes is ignored (extract again).
Rows are written in the order the loader's workers deliver them; ``header.json`` is
rewritten (atomically) only after the rows it counts are flushed, so a kill loses at most
the rows since the last flush, and a resumed extraction skips every sample whose key is
already there without decoding it. When complete, rows are put in key order, so the
result does not depend on the number of workers or on where a kill fell.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info
from tqdm import tqdm

from jepakit.errors import JepakitError
from jepakit.eval.data import EvalImages, UnlabelledError, collate_eval

log = logging.getLogger("jepakit")

FORMAT = "jepakit-features"
VERSION = 1
FLUSH_S = 10.0
"""Seconds between flushes of the rows and the header (and at the end)."""
FP16_MAX = 65504.0


class KeyedImages(EvalImages):
    """:class:`EvalImages` that also yields each sample's key and skips (without decoding)
    the samples whose keys are in ``done``."""

    def __init__(self, *args: Any, done: frozenset[int] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.done = done

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, int]]:  # type: ignore[override]
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        budget = None if self.limit is None else -(-self.limit // workers)
        count = 0
        for u in range(worker, len(self.source.units), workers):
            for pos, load in enumerate(self.loaders(self.source.units[u])):
                if budget is not None and count >= budget:
                    return
                count += 1
                key = (u << 32) | pos
                if key not in self.done:
                    yield (*load(), key)


def collate_keyed(samples: list[tuple[torch.Tensor, int, int]]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """(images, labels, keys) of the good samples, and the keys of the bad ones."""
    images, labels, _ = collate_eval([(s[0], s[1]) for s in samples])
    keys = torch.as_tensor([s[2] for s in samples if s[1] != -2], dtype=torch.long)
    return images, labels, keys, [s[2] for s in samples if s[1] == -2]


class _Arrays:
    """The three memory-mapped files of an extraction, growable."""

    def __init__(self, folder: Path, row_shape: tuple[int, ...], capacity: int) -> None:
        self.folder, self.row_shape = folder, row_shape
        self.width = math.prod(row_shape)
        self.capacity = 0
        self.grow(capacity)

    def _files(self) -> list[tuple[str, Any, int]]:
        return [("x.f16", np.float16, self.width), ("y.i64", np.int64, 1),
                ("k.i64", np.int64, 1)]

    def grow(self, capacity: int) -> None:
        for name, dtype, width in self._files():
            path = self.folder / name
            with open(path, "r+b" if path.exists() else "wb") as f:
                f.truncate(capacity * width * np.dtype(dtype).itemsize)
        self.capacity = capacity
        self.x = np.memmap(self.folder / "x.f16", np.float16, "r+", shape=(capacity, self.width))
        self.y = np.memmap(self.folder / "y.i64", np.int64, "r+", shape=(capacity,))
        self.k = np.memmap(self.folder / "k.i64", np.int64, "r+", shape=(capacity,))

    def flush(self) -> None:
        for a in (self.x, self.y, self.k):
            a.flush()


def _write_header(folder: Path, header: dict[str, Any]) -> None:
    tmp = folder / "header.json.tmp"
    tmp.write_text(json.dumps(header))
    os.replace(tmp, folder / "header.json")


def read_header(folder: Path) -> dict[str, Any] | None:
    """The header, if it is one of ours and its files have the sizes it says."""
    try:
        h = json.loads((folder / "header.json").read_text())
        if h.get("format") != FORMAT or h.get("version") != VERSION:
            return None
        shape = [int(v) for v in h["row_shape"]]
        rows, capacity = int(h["rows"]), int(h["capacity"])
        width = math.prod(shape)
        sizes = {"x.f16": capacity * width * 2, "y.i64": capacity * 8, "k.i64": capacity * 8}
        if not 0 <= rows <= capacity or any(
                (folder / n).stat().st_size != s for n, s in sizes.items()):
            return None
        h["row_shape"], h["rows"], h["capacity"] = shape, rows, capacity
        h["classes"] = [str(c) for c in h["classes"]]
        h["bad_keys"] = [int(k) for k in h["bad_keys"]]
        return h
    except (OSError, ValueError, KeyError, TypeError):
        return None


Loaded = tuple[torch.Tensor, torch.Tensor, list[str], int, torch.Tensor]


def load(folder: Path) -> Loaded | None:
    """A complete extraction, memory-mapped: ``(x [R, *row_shape] fp16, y, classes, bad,
    keys)``, or None when there is none."""
    h = read_header(folder)
    if h is None or not h["complete"]:
        return None
    rows, shape = h["rows"], h["row_shape"]
    x = np.memmap(folder / "x.f16", np.float16, "c", shape=(h["capacity"], math.prod(shape)))
    y = np.fromfile(folder / "y.i64", np.int64, count=rows)
    k = np.fromfile(folder / "k.i64", np.int64, count=rows)
    return (torch.from_numpy(x[:rows]).view(rows, *shape), torch.from_numpy(y),
            h["classes"], len(h["bad_keys"]), torch.from_numpy(k))


def extract(folder: Path, dataset: KeyedImages, encode: Callable[[torch.Tensor], torch.Tensor],
            batch_size: int, num_workers: int, progress: bool, desc: str
            ) -> Loaded:
    """Encode every image of ``dataset`` into ``folder`` (resuming what a killed run left
    there) and return it as :func:`load` does."""
    folder.mkdir(parents=True, exist_ok=True)
    h = read_header(folder)
    done_keys: frozenset[int] = frozenset()
    arrays: _Arrays | None = None
    rows, bad_keys = 0, []
    if h is not None and not h["complete"] and h["classes"] == list(dataset.source.classes):
        arrays = _Arrays(folder, tuple(h["row_shape"]), h["capacity"])
        rows, bad_keys = h["rows"], list(h["bad_keys"])
        done_keys = frozenset(arrays.k[:rows].tolist()) | frozenset(bad_keys)
        log.info("%s: resuming an extraction at %d rows", folder, rows)
    dataset.done = done_keys
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_keyed)
    expected = dataset.expected()
    last_flush = time.perf_counter()

    def header(complete: bool, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "row_shape": list(shape), "rows": rows,
                "capacity": arrays.capacity if arrays else 0, "complete": complete,
                "classes": list(dataset.source.classes), "bad_keys": bad_keys}

    with torch.inference_mode(), tqdm(total=expected, initial=len(done_keys), desc=desc,
                                      unit="img", disable=not progress, dynamic_ncols=True,
                                      leave=False) as bar:
        for images, labels, keys, bad in loader:
            bad_keys += bad
            bar.update(len(labels) + len(bad))
            if not len(labels):
                continue
            if bool((labels < 0).any()):
                raise UnlabelledError(f"{dataset.source.describe()}: samples without a label "
                                      "(no 'cls' entry); evaluation needs labelled data")
            out = encode(images).float().clamp(-FP16_MAX, FP16_MAX).half().cpu()
            if arrays is None:
                arrays = _Arrays(folder, tuple(out.shape[1:]), max(expected or 0, 4096))
            if rows + len(out) > arrays.capacity:
                arrays.flush()
                arrays.grow(max(2 * arrays.capacity, rows + len(out)))
            arrays.x[rows:rows + len(out)] = out.reshape(len(out), -1).numpy()
            arrays.y[rows:rows + len(out)] = labels.numpy()
            arrays.k[rows:rows + len(out)] = keys.numpy()
            rows += len(out)
            if time.perf_counter() - last_flush > FLUSH_S:
                arrays.flush()
                _write_header(folder, header(False, arrays.row_shape))
                last_flush = time.perf_counter()
    if arrays is None or rows == 0:
        raise JepakitError(f"{dataset.source.describe()}: no readable labelled images")
    arrays.flush()
    _write_header(folder, header(False, arrays.row_shape))
    _put_in_key_order(arrays, rows)
    _write_header(folder, header(True, arrays.row_shape))
    if bad_keys:
        log.warning("%s: skipped %d undecodable samples", dataset.source.describe(),
                    len(bad_keys))
    result = load(folder)
    assert result is not None
    return result


def _put_in_key_order(arrays: _Arrays, rows: int, block: int = 65536) -> None:
    """Rewrite the rows sorted by key (a no-op when one worker wrote them in order)."""
    keys = np.asarray(arrays.k[:rows])
    order = np.argsort(keys, kind="stable")
    if np.array_equal(order, np.arange(rows)):
        return
    for name, src in (("x", arrays.x), ("y", arrays.y), ("k", arrays.k)):
        tmp = arrays.folder / f"{name}.sorting"
        out = np.memmap(tmp, src.dtype, "w+", shape=src.shape)
        for i in range(0, rows, block):
            j = min(i + block, rows)
            out[i:j] = src[order[i:j]]
        out.flush()
        del out
    arrays.flush()
    header = json.loads((arrays.folder / "header.json").read_text())
    _write_header(arrays.folder, {**header, "rows": 0, "bad_keys": []})  # a kill in the
    for name, suffix in (("x", "f16"), ("y", "i64"), ("k", "i64")):   # next lines: start over
        os.replace(arrays.folder / f"{name}.sorting", arrays.folder / f"{name}.{suffix}")
    arrays.grow(arrays.capacity)  # map the sorted files
