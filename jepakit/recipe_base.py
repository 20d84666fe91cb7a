"""``base:``: a recipe that starts from another and says only what differs.

``base: ../ijepa_tiny.yaml`` (a path relative to the recipe's own file) reads that
recipe first, itself with its own ``base:`` if it has one, and merges this file over
it key by key: mappings are merged recursively, anything else (numbers, strings,
lists) is replaced. One exception keeps component sections sound: a section whose
``name`` differs from the base's (``masker: {name: block}`` over ``multiblock``) is
taken whole from this file, since the base's params belong to another component.
Overrides from the command line apply after all of this. A cycle is refused.

This works on raw YAML data, before any validation, so the result validates exactly
like a recipe written out in full (``jepakit recipe show`` prints it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jepakit.errors import ConfigError

BASE_KEY = "base"


def merge(base: Mapping[str, Any], child: Mapping[str, Any], top: bool = True
          ) -> dict[str, Any]:
    """``child`` merged over ``base`` (neither is modified; see the module doc)."""
    if not top and "name" in child and "name" in base and child["name"] != base["name"]:
        return _copy(child)
    out = _copy(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value, top=False)
        else:
            out[key] = _copy(value)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def with_bases(path: Path, read: Callable[[Path], dict[str, Any]],
               chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at ``path`` (read by ``read``) merged over its chain of bases."""
    here = path.resolve()
    if here in chain:
        loop = " -> ".join(str(p) for p in (*chain, here))
        raise ConfigError(f"{chain[-1]}: base: recipes include each other in a cycle: {loop}")
    data = read(path)
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: base: expected the path of another recipe (relative to "
                          f"this file), got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: recipe file not found: {base} (looked for {base_path})")
    return merge(with_bases(base_path, read, (*chain, here)), data)
