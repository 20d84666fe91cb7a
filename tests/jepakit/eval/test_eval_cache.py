"""The feature cache: a stream to fp16 memory-mapped files that resumes after a kill and
gives the same features as an uninterrupted extraction."""

from __future__ import annotations

import json

import pytest
import torch
from evalkit import class_folder

from jepakit.eval import cache
from jepakit.eval import features as F
from jepakit.eval.data import resolve


class Killed(Exception):
    pass


def encoder(calls: list[int], die_after: int | None = None):
    """Pixels, or a kill once ``die_after`` batches were encoded."""

    def fn(images: torch.Tensor) -> torch.Tensor:
        if die_after is not None and len(calls) >= die_after:
            raise Killed
        calls.append(len(images))
        return images.flatten(1) * 3 + 1

    return fn


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return class_folder(tmp_path_factory.mktemp("imgs"), per_class=20)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_a_kill_gives_identical_features(folder, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(cache, "FLUSH_S", 0.0)  # every batch flushed, as after a long run
    source = F.pixels(16, 3)
    data = resolve(folder)
    data.units = [u[i:i + 5] for u in data.units for i in range(0, len(u), 5)]  # 8 units

    whole_calls: list[int] = []
    whole = F.extract_with(source, data, "whole", encoder(whole_calls), batch_size=4,
                           num_workers=workers, cache_dir=tmp_path, progress=False)
    calls: list[int] = []
    with pytest.raises(Killed):
        F.extract_with(source, data, "resumed", encoder(calls, die_after=5), batch_size=4,
                       num_workers=workers, cache_dir=tmp_path, progress=False)
    header = json.loads((tmp_path / "resumed" / "header.json").read_text())
    assert header["rows"] == 20 and not header["complete"]
    assert cache.load(tmp_path / "resumed") is None  # incomplete: not served
    resumed_calls: list[int] = []
    resumed = F.extract_with(source, data, "resumed", encoder(resumed_calls), batch_size=4,
                             num_workers=workers, cache_dir=tmp_path, progress=False)
    assert sum(resumed_calls) == 40 - 20  # the 20 done images were not encoded again
    assert resumed.x.dtype == torch.float16 and resumed.x.shape == (40, 3 * 16 * 16)
    assert torch.equal(resumed.x, whole.x) and torch.equal(resumed.y, whole.y)
    assert sum(whole_calls) == 40


def test_cache_is_read_back_memory_mapped_and_foreign_headers_are_ignored(folder, tmp_path):
    source = F.pixels(16, 3)
    data = resolve(folder)
    first = F.extract_with(source, data, "a", encoder([]), cache_dir=tmp_path, progress=False)
    again = F.extract_with(source, data, "a", encoder([]), cache_dir=tmp_path, progress=False)
    assert again.from_cache and torch.equal(first.x, again.x)
    h = tmp_path / "a" / "header.json"
    h.write_text(json.dumps({**json.loads(h.read_text()), "capacity": 10 ** 6}))
    assert cache.load(tmp_path / "a") is None  # sizes do not match: not trusted
    h.write_text("{not json")
    assert cache.load(tmp_path / "a") is None
    redone = F.extract_with(source, data, "a", encoder([]), cache_dir=tmp_path, progress=False)
    assert not redone.from_cache and torch.equal(redone.x, first.x)
