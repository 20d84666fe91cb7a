"""``jepakit plugins [--kind KIND]``: a table of kind, name and provider, then the
installed plugins that are broken (turned off) with their cause."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from typing import Any

from jepakit.kinds import NAMES as KINDS


def register(sub: Any) -> None:
    plugins = sub.add_parser("plugins", help="list registered components")
    plugins.add_argument("--kind", choices=list(KINDS))
    plugins.set_defaults(func=plugins_command)


def plugins_command(args: argparse.Namespace) -> int:
    from jepakit.errors import PluginWarning
    from jepakit.registry import DISABLE_ENV, default_registry

    with warnings.catch_warnings():  # the broken plugins are listed below instead
        warnings.simplefilter("ignore", PluginWarning)
        registry = default_registry()
        broken = registry.broken
    kinds = [args.kind] if args.kind else list(KINDS)
    rows = [(kind, c.name, c.provider) for kind in kinds
            for c in sorted(registry.components(kind).values(), key=lambda c: c.name)]
    _table(("kind", "name", "provider"), rows)
    if broken:
        print(f"\nbroken plugins (turned off; {DISABLE_ENV}=NAME silences the warning):")
        _table(("plugin", "package", "cause"), [(b.name, b.package, b.cause) for b in broken])
    if registry.disabled:
        print(f"\ndisabled by {DISABLE_ENV}: {', '.join(registry.disabled)}")
    return 0


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
