"""``jepakit convert NAME IN OUT [key=value ...]``: a foreign checkpoint -> a jepakit
weights file, by a converter a plugin registers (``jepakit_converters``)::

    jepakit convert ijepa-official IN1K-vit.h.14-300e.pth.tar vith14.pt
    jepakit export vith14.pt --format timm vith14-timm/

``jepakit plugins --kind converter`` lists the installed converters. ``key=value``
settings are checked against the converter's config class, like component params; the
converter must read with ``torch.load(weights_only=True)`` (docs/interop.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from jepakit.errors import ConfigError, JepakitError


def register(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert a foreign checkpoint to jepakit (converters "
                                       "come from plugins: jepakit plugins --kind converter)")
    p.add_argument("source_format", metavar="NAME", help="a registered converter, e.g. "
                                                          "ijepa-official")
    p.add_argument("input", metavar="IN", help="the checkpoint to read")
    p.add_argument("output", metavar="OUT", help="the jepakit weights file to write (.pt)")
    p.add_argument("settings", nargs="*", metavar="key=value",
                   help="converter settings (ijepa-official: num_heads=N, image_size=N)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=convert_command)


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"converter setting '{pair}': expected key=value")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def convert_command(args: argparse.Namespace) -> int:
    from jepakit.registry import default_registry

    registry = default_registry()
    try:
        component = registry.get("converter", args.source_format)
    except JepakitError as exc:
        raise JepakitError(str(exc).replace("unknown converter", "unknown checkpoint format")) from None
    config = registry.config("converter", component.name, _settings(args.settings),
                             path=f"convert {component.name}")
    if not Path(args.input).is_file():
        raise JepakitError(f"checkpoint not found: {args.input}")
    print(f"reading {args.input} ({component.name}, from {component.provider})", flush=True)
    for line in component.factory(config, source=Path(args.input), output=Path(args.output),
                                  overwrite=args.overwrite):
        print(line)
    return 0
