"""The ``jepakit`` command line: one module per command group, each with ``register``.

User mistakes (any :class:`jepakit.JepakitError`) exit 2 with one line and no
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from jepakit.errors import JepakitError, JepakitWarning

COMMAND_MODULES = ("run", "plugins", "check", "recipe", "bench", "shards", "masks", "convert", "export", "eval", "ui")
"""Modules of :mod:`jepakit.cli` whose ``register(subparsers)`` adds commands."""


def parser() -> argparse.ArgumentParser:
    from jepakit import __version__

    p = argparse.ArgumentParser(prog="jepakit",
                                description="Train joint-embedding predictive architectures.")
    p.add_argument("--version", action="version", version=f"jepakit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"jepakit.cli.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    # key=value overrides may also follow options (`run R --run-dir D a.b=1`)
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray or (extra and not hasattr(args, "overrides")):
        p.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except JepakitError as exc:
        print(f"jepakit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jepakit: interrupted", file=sys.stderr)
        return 130


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """jepakit's own warnings as one ``jepakit: warning:`` line; others as Python prints them."""
    if issubclass(category, JepakitWarning):
        print(f"jepakit: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="",
              file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
