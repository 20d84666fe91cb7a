"""``jepakit shards make [SRC] OUT [--shard-size N] [--format ...] [--workers N] [--overwrite]``.

Formats beyond the built-in image ones come from plugins (``jepakit_shard_formats``):
the data plugin adds ``videofolder`` and ``moving-fashion-mnist``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

SHOW_SKIPPED = 20


def register(sub: Any) -> None:
    from jepakit.data.shards import FORMATS

    shards = sub.add_parser("shards", help="WebDataset shard tools")
    shards_sub = shards.add_subparsers(dest="shards_command", required=True)
    make = shards_sub.add_parser(
        "make", help="convert image or video folders, Fashion-MNIST, or Moving Fashion-MNIST "
                     "into shards",
        description="Decode every image or video (broken ones are skipped and listed), shuffle, "
                    "and write OUT/shard-NNNNNN.tar plus OUT/index.json, which recipes can point "
                    "data.params.urls at.")
    make.add_argument("src", nargs="?", default=None,
                      help="class subfolders, a flat folder of images or videos, or the folder "
                           "holding the Fashion-MNIST IDX files (moving-fashion-mnist: optional, "
                           "default /usr/share/datasets/fashion-mnist)")
    make.add_argument("out", help="output folder (must be empty unless --overwrite)")
    make.add_argument("--shard-size", type=int, default=1000, help="samples per shard (1000)")
    make.add_argument("--format", default="auto",
                      help=f"{', '.join(FORMATS)}, or a plugin's: videofolder (class subfolders "
                           "of videos), moving-fashion-mnist (generated clips). auto: "
                           "Fashion-MNIST if SRC holds its IDX files, else videos if SRC holds "
                           "videos and no images, else class subfolders if any, else a flat "
                           "folder")
    make.add_argument("--split", default="train", choices=["train", "test"],
                      help="Fashion-MNIST split, also the one Moving Fashion-MNIST draws from "
                           "(train)")
    make.add_argument("--count", type=int, default=None,
                      help="moving-fashion-mnist: clips to generate (default: one per item "
                           "of the split)")
    make.add_argument("--frames", type=int, default=16,
                      help="moving-fashion-mnist: frames per clip (16)")
    make.add_argument("--fps", type=int, default=8,
                      help="moving-fashion-mnist: frame rate written into the videos (8)")
    make.add_argument("--prefix", default="shard", help="shard file name prefix (shard)")
    make.add_argument("--seed", type=int, default=0, help="seed of the pre-write shuffle (0)")
    make.add_argument("--overwrite", action="store_true",
                      help="replace the shards and index already in OUT")
    make.add_argument("--workers", type=int, default=None,
                      help="processes that read, check and encode samples (default: the cores); "
                           "the output is identical for any number")
    make.add_argument("--no-progress", action="store_true", help="no progress bar")
    make.set_defaults(func=make_command)


def make_command(args: argparse.Namespace) -> int:
    from jepakit.data.index import INDEX_NAME, brace_pattern
    from jepakit.data.shards import make_shards

    options = {"count": args.count, "frames": args.frames, "fps": args.fps}
    index = make_shards(args.src, args.out, shard_size=args.shard_size, fmt=args.format,
                        split=args.split, overwrite=args.overwrite, prefix=args.prefix,
                        seed=args.seed, progress=not args.no_progress, workers=args.workers,
                        options=options)
    for item in index.skipped[:SHOW_SKIPPED]:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    if len(index.skipped) > SHOW_SKIPPED:
        print(f"... and {len(index.skipped) - SHOW_SKIPPED} more (all listed in "
              f"{args.out}/{INDEX_NAME})", file=sys.stderr)
    pattern = brace_pattern([str(s["name"]) for s in index.shards])
    classes = f", {len(index.classes)} classes" if index.classes else ", unlabelled"
    print(f"Wrote {index.num_samples} samples in {len(index.shards)} shard(s){classes} to "
          f"{args.out}/{pattern}; skipped {len(index.skipped)} bad input(s). "
          f"Train on them with data.name={index.dataset} "
          f"data.params.urls={args.out}/{INDEX_NAME}")
    return 0
