"""``jepakit export RUN_OR_CKPT --format safetensors|timm OUT``: the encoder, for use elsewhere.

    jepakit export runs/ijepa_tiny-20250101-120000 --format safetensors encoder.safetensors
    jepakit export vith14.pt --format timm vith14-timm/
    python -c "import timm; m = timm.create_model('local-dir:vith14-timm', pretrained=True)"

RUN_OR_CKPT is a run directory (its newest readable checkpoint is used), a
checkpoint file, or a file written by ``jepakit convert``. The target encoder is
exported unless ``--encoder online``. ``timm`` writes a folder timm loads strictly,
after checking that timm's features equal the encoder's (docs/interop.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from jepakit.errors import JepakitError, did_you_mean

FORMATS = ("safetensors", "timm")


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run's encoder as safetensors or for timm")
    p.add_argument("source", metavar="RUN_OR_CKPT", help="run directory or checkpoint file")
    p.add_argument("output", metavar="OUT",
                   help="the .safetensors file, or the folder for --format timm")
    p.add_argument("--format", dest="export_format", required=True, metavar="FORMAT",
                   help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--encoder", default="target", help="target (default) or online")
    p.add_argument("--no-verify", action="store_true",
                   help="timm: skip building the timm model and comparing features")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    if args.export_format not in FORMATS:
        raise JepakitError(f"unknown export format '{args.export_format}'"
                           f"{did_you_mean(args.export_format, FORMATS)}; "
                           f"valid: {', '.join(FORMATS)}")
    if args.encoder not in ("target", "online"):
        raise JepakitError(f"--encoder: expected 'target' or 'online', got '{args.encoder}'")
    from jepakit.interop import encoder_from_state, export_safetensors, export_timm, load_source

    state, path = load_source(args.source)
    encoder, spec = encoder_from_state(state, args.encoder)
    step = state.get("step")
    print(f"read {path}: {args.encoder} encoder '{spec['name']}'"
          + (f" at step {step}" if isinstance(step, int) and step else ""), flush=True)
    if args.export_format == "safetensors":
        out = export_safetensors(encoder, spec, args.output, overwrite=args.overwrite,
                                 metadata={"jepakit.source": str(path),
                                           "jepakit.which": args.encoder})
        print(f"wrote {out}")
        return 0
    if not args.no_verify:
        print("building the timm model and comparing features ...", flush=True)
    result = export_timm(encoder, args.output, verify=not args.no_verify,
                         overwrite=args.overwrite)
    if result["max_difference"] is not None:
        print(f"timm {result['architecture']} loads strictly; max feature difference "
              f"{result['max_difference']:.2g}")
    print(f"wrote {args.output}/model.safetensors and config.json: "
          f"timm.create_model('local-dir:{args.output}', pretrained=True)")
    return 0
