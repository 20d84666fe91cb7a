"""The shard index: a small JSON file next to the shards, written by ``jepakit shards make``.

It lists each shard with its sample count (so a truncated shard is noticed and
the loss counted exactly), the class names (label ``i`` is ``classes[i]``) and
the inputs that were skipped. A recipe can point ``data.params.urls`` at it.

An index is data written by someone else (it may come from a web server), so it
only ever names files: each shard name must be a plain relative file name, resolved
next to the index. A scheme (``pipe:`` runs a shell command in webdataset, ``http:``
fetches from anywhere), an absolute path, ``..`` or a character outside a
conservative set is refused: only the user, in the recipe or on the command line,
decides what runs or where data comes from (docs/data.md, "Security").
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

import attrs
import webdataset as wds

from jepakit.errors import JepakitError

INDEX_NAME = "index.json"
FORMAT = "jepakit-shards"
MAX_INDEX_BYTES = 64 << 20
"""An index of a million shards is ~60 MB; anything larger is not an index."""
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*$")
"""One path component of a shard name: no scheme (no ``:``), no shell or brace syntax,
no leading ``.`` (so neither ``..`` nor hidden files) and no leading ``-`` (an option)."""


@attrs.define
class ShardIndex:
    shards: list[dict[str, Any]]
    """``{"name": "shard-000000.tar", "samples": 1000}`` in order."""
    classes: list[str] = attrs.field(factory=list)
    source: str = ""
    skipped: list[dict[str, str]] = attrs.field(factory=list)
    """``{"path": ..., "reason": ...}`` of each input left out."""
    dataset: str = "webdataset"
    """The data source that reads these shards (``video_webdataset`` for videos)."""

    @property
    def num_samples(self) -> int:
        return sum(int(s["samples"]) for s in self.shards)

    def to_json(self) -> str:
        data = {
            "format": FORMAT, "version": 1, "source": self.source, "dataset": self.dataset,
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
    """Read an index from a path or any URL gopen understands (``pipe:``, ``http``);
    anything that is not a well-formed index is a one-line :class:`JepakitError`."""
    try:
        with wds.gopen(url) as stream:
            raw = stream.read(MAX_INDEX_BYTES + 1)
        if len(raw) > MAX_INDEX_BYTES:
            raise JepakitError(f"shard index {url} is larger than {MAX_INDEX_BYTES >> 20} MiB; "
                               "not a jepakit shard index")
        data = json.loads(raw)
    except FileNotFoundError:
        raise JepakitError(f"shard index not found: {url}") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise JepakitError(f"shard index {url} is unreadable: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise JepakitError(f"{url} is not a jepakit shard index (written by `jepakit shards make`)")
    return ShardIndex(shards=_entries(url, data.get("shards")),
                      classes=_strings(url, "classes", data.get("classes", [])),
                      source=str(data.get("source", "")),
                      dataset=str(data.get("dataset", "webdataset")),
                      skipped=[s for s in _list(url, "skipped", data.get("skipped", []))
                               if isinstance(s, dict)])


def _list(url: str, key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise JepakitError(f"shard index {url}: '{key}' must be a list, got "
                           f"{type(value).__name__}")
    return value


def _strings(url: str, key: str, value: Any) -> list[str]:
    items = _list(url, key, value)
    if not all(isinstance(x, str) for x in items):
        raise JepakitError(f"shard index {url}: '{key}' must be a list of strings")
    return list(items)


def _entries(url: str, value: Any) -> list[dict[str, Any]]:
    """Each shard entry as ``{"name": str, "samples": int >= 0}``, names checked."""
    entries = []
    for i, entry in enumerate(_list(url, "shards", value)):
        name = entry.get("name") if isinstance(entry, dict) else None
        samples = entry.get("samples") if isinstance(entry, dict) else None
        if not isinstance(name, str) or isinstance(samples, bool) \
                or not isinstance(samples, int) or samples < 0:
            raise JepakitError(f"shard index {url}: shard entry {i} must be "
                               f'{{"name": "<file>", "samples": <count>}}, got {str(entry)[:80]}')
        check_shard_name(url, name)
        entries.append({**entry, "name": name, "samples": samples})
    return entries


def check_shard_name(index_url: str, name: str) -> None:
    """Refuse a shard name that is not a plain relative file name (see the module doc)."""
    parts = name.split("/")
    if name and all(_SAFE_PART.match(part) for part in parts):
        return
    why = ("a URL or command" if ":" in name else "an absolute path" if name.startswith("/")
           else "outside the index's folder" if ".." in parts else "not a plain file name")
    raise JepakitError(f"shard index {index_url}: refusing shard entry {name[:120]!r} ({why}); "
                       "an index may only name files next to it. Put URLs and pipe: commands "
                       "in the recipe's data.params.urls instead")


def shard_urls(index_url: str, index: ShardIndex) -> list[str]:
    """Shard names resolved against the index's own folder or URL (names were checked
    by :func:`read_index`; checked again here for indexes built in code)."""
    base = index_url.rsplit("/", 1)[0] if "/" in index_url else "."
    urls = []
    for shard in index.shards:
        name = str(shard["name"])
        check_shard_name(index_url, name)
        urls.append(f"{base}/{name}")
    return urls


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
