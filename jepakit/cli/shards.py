"""``jepakit shards make SRC OUT [--shard-size N] [--format ...] [--workers N] [--overwrite]``."""

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
        "make", help="convert an image folder, a flat folder or Fashion-MNIST into shards",
        description="Decode every image (broken ones are skipped and listed), shuffle, and write "
                    "OUT/shard-NNNNNN.tar plus OUT/index.json, which recipes can point "
                    "data.params.urls at.")
    make.add_argument("src", help="class subfolders, a flat folder of images, or the folder "
                                  "holding the Fashion-MNIST IDX files")
    make.add_argument("out", help="output folder (must be empty unless --overwrite)")
    make.add_argument("--shard-size", type=int, default=1000, help="samples per shard (1000)")
    make.add_argument("--format", choices=list(FORMATS), default="auto",
                      help="auto: Fashion-MNIST if SRC holds its IDX files, else class "
                           "subfolders if any, else a flat folder")
    make.add_argument("--split", default="train", choices=["train", "test"],
                      help="Fashion-MNIST split (train)")
    make.add_argument("--prefix", default="shard", help="shard file name prefix (shard)")
    make.add_argument("--seed", type=int, default=0, help="seed of the pre-write shuffle (0)")
    make.add_argument("--overwrite", action="store_true",
                      help="replace the shards and index already in OUT")
    make.add_argument("--workers", type=int, default=None,
                      help="processes that read, check and encode images (default: the cores); "
                           "the output is identical for any number")
    make.add_argument("--no-progress", action="store_true", help="no progress bar")
    make.set_defaults(func=make_command)


def make_command(args: argparse.Namespace) -> int:
    from jepakit.data.index import INDEX_NAME, brace_pattern
    from jepakit.data.shards import make_shards

    index = make_shards(args.src, args.out, shard_size=args.shard_size, fmt=args.format,
                        split=args.split, overwrite=args.overwrite, prefix=args.prefix,
                        seed=args.seed, progress=not args.no_progress, workers=args.workers)
    for item in index.skipped[:SHOW_SKIPPED]:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    if len(index.skipped) > SHOW_SKIPPED:
        print(f"... and {len(index.skipped) - SHOW_SKIPPED} more (all listed in "
              f"{args.out}/{INDEX_NAME})", file=sys.stderr)
    pattern = brace_pattern([str(s["name"]) for s in index.shards])
    classes = f", {len(index.classes)} classes" if index.classes else ", unlabelled"
    print(f"Wrote {index.num_samples} samples in {len(index.shards)} shard(s){classes} to "
          f"{args.out}/{pattern}; skipped {len(index.skipped)} bad input(s). "
          f"Train on them with data.name=webdataset data.params.urls={args.out}/{INDEX_NAME}")
    return 0
