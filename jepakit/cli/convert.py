"""``jepakit convert FORMAT IN OUT``: foreign checkpoints -> a jepakit weights file.

    jepakit convert ijepa-official IN1K-vit.h.14-300e.pth.tar vith14.pt
    jepakit export vith14.pt --format timm vith14-timm/

``ijepa-official`` reads the official I-JEPA training checkpoint (keys ``encoder``,
``predictor``, ``target_encoder``, ``opt``, ...; ``module.`` prefixes from DDP) with
``torch.load(weights_only=True)`` and writes jepakit's ``vit`` encoder, target encoder
and ``ijepa`` predictor with their recipe sections (docs/interop.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jepakit.errors import JepakitError, did_you_mean

FORMATS = ("ijepa-official",)


def register(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert a foreign checkpoint (official I-JEPA) to jepakit")
    p.add_argument("source_format", metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("input", metavar="IN", help="the checkpoint to read")
    p.add_argument("output", metavar="OUT", help="the jepakit weights file to write (.pt)")
    p.add_argument("--num-heads", type=int, default=None,
                   help="attention heads, for widths that are not an official model size")
    p.add_argument("--image-size", type=int, default=None,
                   help="image size, only for checkpoints that store no position table")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=convert_command)


def convert_command(args: argparse.Namespace) -> int:
    if args.source_format not in FORMATS:
        raise JepakitError(f"unknown checkpoint format '{args.source_format}'"
                           f"{did_you_mean(args.source_format, FORMATS)}; "
                           f"valid: {', '.join(FORMATS)}")
    for flag in ("num_heads", "image_size"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise JepakitError(f"--{flag.replace('_', '-')} must be > 0, got {value}")
    from jepakit.interop import convert_ijepa_official

    if not Path(args.input).is_file():
        raise JepakitError(f"checkpoint not found: {args.input}")
    print(f"reading {args.input} (official I-JEPA layout)", flush=True)
    report = convert_ijepa_official(args.input, args.output, num_heads=args.num_heads,
                                    image_size=args.image_size, overwrite=args.overwrite)
    enc = report.encoder
    grid = enc["image_size"] // enc["patch_size"]
    print(f"encoder: vit width {enc['embed_dim']}, depth {enc['depth']}, heads "
          f"{enc['num_heads']}, patch {enc['patch_size']}, {enc['image_size']} px "
          f"({grid}x{grid} grid)")
    if report.predictor:
        pred = report.predictor
        print(f"predictor: ijepa width {pred['embed_dim']}, depth {pred['depth']}, heads "
              f"{pred['num_heads']}")
    else:
        print("predictor: none in the checkpoint")
    print(f"position tables match jepakit's sin-cos (max difference {report.pos_embed_error:.2g})")
    if report.ignored:
        print(f"not converted: {', '.join(report.ignored)}")
    epoch = f" (epoch {report.epoch})" if report.epoch is not None else ""
    print(f"wrote {report.output}{epoch}")
    return 0
