"""Atomic checkpoints: write to a temporary file, fsync, rename; keep the last K."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from jepakit.errors import JepakitError

_NAME = re.compile(r"^step_(\d+)\.pt$")


def save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path), oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def prune(directory: Path, keep_last: int) -> None:
    for _, path in list_checkpoints(directory)[:-keep_last]:
        path.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint can hold tensors and plain data, never code."""
    if not path.is_file():
        raise JepakitError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torn file, foreign pickle, ...
        reason = " ".join(str(exc).split("\n\n")[0].split())  # torch's messages span paragraphs
        if "Weights only load failed" in str(exc):
            reason = ("it holds pickled objects other than tensors and plain data, which "
                      "weights_only loading refuses (a checkpoint must not run code)")
        raise JepakitError(f"checkpoint {path} is unreadable: {reason[:300]}") from None
    if not isinstance(state, dict):
        raise JepakitError(f"checkpoint {path} holds a {type(state).__name__}, not the "
                           "dictionary a checkpoint is")
    return state


def latest_valid(directory: Path, log: Any = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``directory`` that loads; a torn or corrupt one is
    reported by name and the previous one is tried."""
    for _, path in reversed(list_checkpoints(directory)):
        try:
            return path, load(path)
        except JepakitError as exc:
            if log is not None:
                log.warning("skipping checkpoint %s: %s", path.name, exc)
    return None


def rng_state() -> dict[str, Any]:
    """Every random stream a step can touch, as tensors and plain data (weights_only-safe)."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    keys = np.asarray(keys)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
