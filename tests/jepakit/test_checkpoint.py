"""Atomic checkpoint files: write, prune, and refuse anything but tensors and plain data."""

from __future__ import annotations

import pytest
import torch

from jepakit import checkpoint
from jepakit.errors import JepakitError


class NotAllowed:
    """A custom class: weights_only loading must refuse to unpickle it."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_save_atomic_round_trip(tmp_path):
    state = {"step": 3, "weights": torch.arange(6.0).view(2, 3), "nested": {"a": [1, 2.5, "x"]}}
    path = checkpoint.checkpoint_path(tmp_path / "ckpt", 3)
    assert path.name == "step_00000003.pt"
    checkpoint.save_atomic(state, path)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    loaded = checkpoint.load(path)
    assert loaded["step"] == 3 and loaded["nested"] == {"a": [1, 2.5, "x"]}
    assert torch.equal(loaded["weights"], state["weights"])
    assert torch.equal(torch.load(path, weights_only=True)["weights"], state["weights"])


def test_save_atomic_replaces_existing(tmp_path):
    path = tmp_path / "step_00000001.pt"
    checkpoint.save_atomic({"v": 1}, path)
    checkpoint.save_atomic({"v": 2}, path)
    assert checkpoint.load(path) == {"v": 2}


def test_failed_save_leaves_no_file(tmp_path):
    path = tmp_path / "step_00000001.pt"
    with pytest.raises(Exception):  # noqa: B017 (torch raises a pickling error of its own)
        checkpoint.save_atomic({"f": lambda: 0}, path)
    assert list(tmp_path.iterdir()) == []


def test_list_and_prune_keep_last(tmp_path):
    for step in (5, 100, 20, 1):
        checkpoint.save_atomic({"step": step}, checkpoint.checkpoint_path(tmp_path, step))
    (tmp_path / "notes.txt").write_text("keep me")
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [1, 5, 20, 100]
    checkpoint.prune(tmp_path, keep_last=2)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [20, 100]
    assert (tmp_path / "notes.txt").exists()
    checkpoint.prune(tmp_path, keep_last=5)
    assert len(checkpoint.list_checkpoints(tmp_path)) == 2


def test_list_of_missing_directory(tmp_path):
    assert checkpoint.list_checkpoints(tmp_path / "none") == []


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.ones(2), "obj": NotAllowed(3)}, path)
    with pytest.raises(JepakitError, match="unreadable"):
        checkpoint.load(path)


def test_load_truncated_file(tmp_path):
    path = tmp_path / "step_00000001.pt"
    checkpoint.save_atomic({"weights": torch.randn(64, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JepakitError, match="unreadable"):
        checkpoint.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(JepakitError, match="not found"):
        checkpoint.load(tmp_path / "nope.pt")
