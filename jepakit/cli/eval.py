"""``jepakit eval linear|knn|attentive (--run DIR | --checkpoint PATH | --random-init RECIPE |
--pixels) --data PATH [--test-data PATH] [--layers last|last4] [--shots K] [--controls]
[--json PATH]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jepakit.errors import JepakitError


def _common(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("what to evaluate (one of)")
    src.add_argument("--run", help="run directory: its newest loadable checkpoint")
    src.add_argument("--checkpoint", help="a checkpoint file")
    src.add_argument("--random-init", metavar="RECIPE",
                     help="the recipe's encoder with random weights (a baseline)")
    src.add_argument("--pixels", action="store_true", help="raw pixels (a baseline)")
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True,
                   help="labelled images: shards (folder, index.json, .tar pattern), a folder of "
                        "class folders, or the Fashion-MNIST IDX folder; a folder holding train/ "
                        "and test/ (or val/) gives both splits")
    d.add_argument("--test-data", help="the test set (default: the test split of --data, or "
                                       "20%% held out of it)")
    d.add_argument("--format", default="auto",
                   choices=["auto", "shards", "imagefolder", "fashion-mnist"])
    d.add_argument("--shots", type=int, help="low-shot: K training examples per class (seeded)")
    d.add_argument("--shots-file", metavar="PATH",
                   help="low-shot: the training images named in PATH, one file name per line "
                        "(e.g. the 1%% ImageNet split, 1percent.txt); image folders only")
    d.add_argument("--clips-per-video", type=int, default=1, metavar="K",
                   help="video encoders: K clips spread evenly over each video, their features "
                        "averaged (the attentive probe reads all their tokens)")
    d.add_argument("--crop-ratio", type=float, default=1.0,
                   help="resize to size/ratio, centre-crop to size (0.875 for ImageNet)")
    f = p.add_argument_group("features")
    f.add_argument("--layers", default="last", choices=["last", "last4"],
                   help="average-pooled last layer, or the last 4 layers concatenated "
                        "(linear and k-NN; the attentive probe reads the last layer's tokens)")
    f.add_argument("--projector", action="store_true",
                   help="probe the backbone's pooled output through the method's projector "
                        "(LeJEPA's loss space) instead of the backbone")
    f.add_argument("--batch-size", type=int, default=256)
    f.add_argument("--num-workers", type=int, default=None,
                   help="image-decoding processes (default: one per CPU this process may "
                        "use, at most 8; 0 decodes in the main process)")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    f.add_argument("--cache-dir", help="feature cache (default RUN/eval/cache)")
    f.add_argument("--no-cache", action="store_true", help="extract again, cache nothing")
    p.add_argument("--controls", action="store_true",
                   help="also run the same probe on the same architecture at random init and "
                        "on raw pixels, and print them next to the result")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_path",
                   help="write the results here (default RUN/eval/<protocol>-<layers>.json)")


def register(sub: Any) -> None:
    ev = sub.add_parser("eval", help="linear probe or k-NN on frozen target-encoder features")
    protocols = ev.add_subparsers(dest="protocol", required=True)
    linear = protocols.add_parser("linear", help="linear probe (logistic regression, L-BFGS)")
    _common(linear)
    linear.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations per fit")
    linear.set_defaults(func=eval_command)
    knn = protocols.add_parser("knn", help="weighted k-nearest-neighbour classification")
    _common(knn)
    knn.add_argument("--k", type=int, default=20)
    knn.add_argument("--temperature", type=float, default=0.07)
    knn.set_defaults(func=eval_command)
    att = protocols.add_parser("attentive", help="attentive probe: cross-attention pooler with "
                                                 "query tokens over frozen patch tokens")
    _common(att)
    att.add_argument("--epochs", type=int, default=10)
    att.add_argument("--probe-batch-size", type=int, default=256)
    att.add_argument("--lrs", default="1e-3,3e-4,1e-4",
                     help="learning rates, comma-separated (each x each weight decay is one "
                          "head, all trained in one pass)")
    att.add_argument("--wds", default="0.01,0.1", help="AdamW weight decays, comma-separated")
    att.add_argument("--queries", type=int, default=1, help="learnable query tokens")
    att.add_argument("--depth", type=int, default=1,
                     help="attention blocks (1 cross-attention, the rest self-attention)")
    att.add_argument("--heads", type=int, default=16, help="attention heads (fewer when narrow)")
    att.add_argument("--patch", type=int,
                     help="pixel patch size for raw-pixel tokens (default: the encoder's)")
    att.set_defaults(func=eval_command)


def _source(args: argparse.Namespace) -> Any:
    from jepakit.eval import features as F

    chosen = [n for n in ("run", "checkpoint", "random_init") if getattr(args, n)]
    chosen += ["pixels"] if args.pixels else []
    if len(chosen) != 1:
        raise JepakitError("say what to evaluate: exactly one of --run, --checkpoint, "
                           "--random-init or --pixels")
    if args.run:
        return F.from_run(args.run, head="projector" if args.projector else "backbone")
    if args.checkpoint:
        return F.from_checkpoint(args.checkpoint,
                                 head="projector" if args.projector else "backbone")
    if args.random_init:
        return F.from_recipe(args.random_init)
    return None  # pixels: sized after the data


def _pixels_source(args: argparse.Namespace) -> Any:
    import numpy as np
    from PIL import Image

    from jepakit.eval import features as F
    from jepakit.eval.data import EvalImages, resolve_pair

    train, _ = resolve_pair(args.data, args.test_data, args.format)
    first: Any = EvalImages(train, lambda im: im, 3, limit=1)  # type: ignore[arg-type,return-value]
    image = next(iter(first), (None, 0))[0]
    if not isinstance(image, Image.Image):
        raise JepakitError(f"{train.describe()}: could not read a first image (raw pixels "
                           "of video clips: evaluate the video run with --controls)")
    rgb = np.asarray(image.convert("RGB"))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return F.pixels(min(image.size), 1 if grey else 3)


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise JepakitError(f"{flag} takes comma-separated numbers, got '{text}'") from None
    if not values or any(v < 0 for v in values):
        raise JepakitError(f"{flag} needs one or more non-negative numbers, got '{text}'")
    return values


def _run_one(args: argparse.Namespace, source: Any, device: Any, cache_dir: Path | None,
             progress: bool) -> dict[str, Any]:
    from jepakit.eval.protocols import prepare, run_attentive, run_knn, run_linear

    attentive = args.protocol == "attentive"
    data = prepare(source, args.data, args.test_data, args.format, args.layers, args.shots,
                   batch_size=args.batch_size, num_workers=args.num_workers,
                   cache_dir=cache_dir, use_cache=not args.no_cache, crop_ratio=args.crop_ratio,
                   seed=args.seed, progress=progress, device=device, tokens=attentive,
                   patch=getattr(args, "patch", None), shots_file=args.shots_file)
    if args.protocol == "linear":
        return run_linear(source, data, args.shots, seed=args.seed, max_iter=args.max_iter)
    if attentive:
        return run_attentive(source, data, args.shots, learning_rates=args.lrs,
                             weight_decays=args.wds, epochs=args.epochs,
                             batch_size=args.probe_batch_size, queries=args.queries,
                             depth=args.depth, heads=args.heads, seed=args.seed,
                             progress=progress)
    return run_knn(source, data, args.shots, args.k, args.temperature)


def eval_command(args: argparse.Namespace) -> int:
    from jepakit.eval.attentive import pixel_patch
    from jepakit.eval.controls import control_sources
    from jepakit.eval.protocols import default_cache_dir, summary_line
    from jepakit.runtime import select_device
    from jepakit.tracking import setup_logging

    setup_logging(None)
    if args.shots is not None and args.shots < 1:
        raise JepakitError("--shots must be >= 1")
    if args.batch_size < 1:
        raise JepakitError("--batch-size must be >= 1")
    if args.protocol == "attentive" and min(args.epochs, args.probe_batch_size, args.queries,
                                            args.depth, args.heads) < 1:
        raise JepakitError("--epochs, --probe-batch-size, --queries, --depth and --heads "
                           "must be >= 1")
    if args.protocol == "attentive":
        args.lrs, args.wds = _floats(args.lrs, "--lrs"), _floats(args.wds, "--wds")
    device = select_device(args.device)
    if args.num_workers is None:
        args.num_workers = default_workers()
    from jepakit.eval.clips import with_clips_per_video

    source = with_clips_per_video(_source(args) or _pixels_source(args), args.clips_per_video)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(source)
    progress = sys.stderr.isatty()
    result = _run_one(args, source, device, cache_dir, progress)
    out = _json_path(args, source, result["layers"])
    _write(out, result)
    print(summary_line(result) + (f" -> {out}" if out else ""), flush=True)
    if args.controls:  # each printed as soon as it is done: they cost as much as the result
        if args.protocol == "attentive" and getattr(args, "patch", None) is None \
                and source.encoder is not None:
            args.patch = pixel_patch(source)  # pixel tokens on the encoder's patch grid
        result["controls"] = []
        for control in control_sources(source):
            control = with_clips_per_video(control, args.clips_per_video)
            result["controls"].append(_run_one(args, control, device, cache_dir, progress))
            print(f"  control: {summary_line(result['controls'][-1])}", flush=True)
            _write(out, result)
        if not result["controls"]:
            print("  control: none (raw pixels are the baseline itself)")
    return 0


def _write(out: Path | None, result: dict[str, Any]) -> None:
    if out is None:
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise JepakitError(f"cannot write {out}: {exc.strerror or exc}") from None


def default_workers() -> int:
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cpus or 1) < 2 else min(int(cpus or 1), 8)


def _json_path(args: argparse.Namespace, source: Any, layers: str) -> Path | None:
    if args.json_path:
        return Path(args.json_path)
    if source.run_dir is None:
        return None
    shots = f"-{args.shots}shot" if args.shots else ""
    shots = f"-{Path(args.shots_file).stem}" if args.shots_file else shots
    clips = f"-{args.clips_per_video}clips" if args.clips_per_video > 1 else ""
    return Path(source.run_dir) / "eval" / f"{args.protocol}-{layers}{shots}{clips}.json"
