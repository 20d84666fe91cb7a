"""The shard index: a small JSON file next to the shards, written by ``jepakit shards make``.

It lists each shard with its sample count (so a truncated shard is noticed and
the loss counted exactly), the class names (label ``i`` is ``classes[i]``) and
the inputs that were skipped. A recipe can point ``data.params.urls`` at it.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import attrs
import webdataset as wds

from jepakit.errors import JepakitError

INDEX_NAME = "index.json"
FORMAT = "jepakit-shards"


@attrs.define
class ShardIndex:
    shards: list[dict[str, Any]]
    """``{"name": "shard-000000.tar", "samples": 1000}`` in order."""
    classes: list[str] = attrs.field(factory=list)
    source: str = ""
    skipped: list[dict[str, str]] = attrs.field(factory=list)
    """``{"path": ..., "reason": ...}`` of each input left out."""

    @property
    def num_samples(self) -> int:
        return sum(int(s["samples"]) for s in self.shards)

    def to_json(self) -> str:
        data = {
            "format": FORMAT, "version": 1, "source": self.source,
            "num_samples": self.num_samples, "num_shards": len(self.shards),
            "pattern": brace_pattern([s["name"] for s in self.shards]),
            "classes": self.classes, "shards": self.shards, "skipped": self.skipped,
        }
        return json.dumps(data, indent=1) + "\n"


def brace_pattern(names: list[str]) -> str:
    """``shard-{000000..000009}.tar`` for consecutive numbered names, else the first name."""
    if len(names) < 2:
        return names[0] if names else ""
    first, last = names[0], names[-1]
    head = posixpath.commonprefix([first, last])
    head = head.rstrip("0123456789")
    tail_first, tail_last = first[len(head):], last[len(head):]
    digits = len(tail_first) - len(tail_first.lstrip("0123456789"))
    return f"{head}{{{tail_first[:digits]}..{tail_last[:digits]}}}{tail_first[digits:]}"


def read_index(url: str) -> ShardIndex:
    """Read an index from a path or any URL gopen understands (``pipe:``, ``http``)."""
    try:
        with wds.gopen(url) as stream:
            data = json.loads(stream.read())
    except FileNotFoundError:
        raise JepakitError(f"shard index not found: {url}") from None
    except (OSError, ValueError) as exc:
        raise JepakitError(f"shard index {url} is unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise JepakitError(f"{url} is not a jepakit shard index (written by `jepakit shards make`)")
    return ShardIndex(shards=list(data["shards"]), classes=list(data.get("classes", [])),
                      source=str(data.get("source", "")), skipped=list(data.get("skipped", [])))


def shard_urls(index_url: str, index: ShardIndex) -> list[str]:
    """Shard names resolved against the index's directory (local path or URL)."""
    base = index_url.rsplit("/", 1)[0] if "/" in index_url else "."
    return [name if "/" in name else f"{base}/{name}" for name in
            (str(s["name"]) for s in index.shards)]


def sibling_index(url: str) -> ShardIndex | None:
    """The index next to a local shard, if ``jepakit shards make`` left one."""
    if ":" in url.split("/", 1)[0]:
        return None
    path = Path(url).parent / INDEX_NAME
    if not path.is_file():
        return None
    try:
        return read_index(str(path))
    except JepakitError:
        return None
