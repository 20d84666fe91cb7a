"""``jepakit plugins [--kind KIND]``: a table of kind, name and provider."""

from __future__ import annotations

import argparse
from typing import Any

from jepakit.kinds import NAMES as KINDS


def register(sub: Any) -> None:
    plugins = sub.add_parser("plugins", help="list registered components")
    plugins.add_argument("--kind", choices=list(KINDS))
    plugins.set_defaults(func=plugins_command)


def plugins_command(args: argparse.Namespace) -> int:
    from jepakit.registry import default_registry

    registry = default_registry()
    kinds = [args.kind] if args.kind else list(KINDS)
    header = ("kind", "name", "provider")
    rows = [(kind, c.name, c.provider) for kind in kinds
            for c in sorted(registry.components(kind).values(), key=lambda c: c.name)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
