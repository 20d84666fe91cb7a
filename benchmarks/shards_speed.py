"""How fast `jepakit shards make` converts real-size JPEGs, per core and with all cores.

Writes a class-folder tree of ImageNet-sized JPEGs (500x375, quality 90, about
ImageNet's 110 KB average: smooth colour fields with texture and noise, so the
decoder does the work a photograph asks of it), then converts it with ``--workers 1``
and with ``--workers N`` and prints images/s, images/s per worker and the projected
time for ImageNet-1k's 1,281,167 training images.

    python benchmarks/shards_speed.py [--images 400] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

IMAGENET_TRAIN = 1_281_167


def photo_like(rng: np.random.Generator, width: int = 500, height: int = 375) -> bytes:
    """A JPEG of a photograph's size and entropy (not its content)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.03, 2).tolist() + [rng.uniform(0, 6.3)]
        image[..., c] = 128 + 80 * np.sin(xs * fx + ys * fy + phase)
    image += rng.normal(0, 18, (height, width, 1)) + rng.normal(0, 10, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_folder(root: Path, images: int, classes: int = 10, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    size = 0
    for i in range(images):
        path = root / f"class_{i % classes:02d}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = photo_like(rng)
        path.write_bytes(data)
        size += len(data)
    return size


def convert(src: Path, out: Path, workers: int) -> float:
    from jepakit.data.shards import make_shards

    start = time.perf_counter()
    make_shards(src, out, shard_size=100, overwrite=True, progress=False, workers=workers)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from jepakit.data.shards import default_workers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--keep", help="write the JPEGs and shards here instead of a temporary folder")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        size = make_folder(root / "jpegs", args.images)
        result: dict[str, object] = {"images": args.images,
                                     "mean_kb": round(size / args.images / 1024, 1)}
        for workers in sorted({1, args.workers}):
            seconds = convert(root / "jpegs", root / f"shards-{workers}", workers)
            rate = args.images / seconds
            result[f"workers_{workers}"] = {
                "seconds": round(seconds, 2), "images_per_s": round(rate, 1),
                "images_per_s_per_worker": round(rate / workers, 1),
                "imagenet_1k_hours": round(IMAGENET_TRAIN / rate / 3600, 2)}
            print(f"--workers {workers}: {rate:.0f} images/s ({rate / workers:.0f} per worker); "
                  f"ImageNet-1k train ({IMAGENET_TRAIN:,} images) would take "
                  f"{IMAGENET_TRAIN / rate / 3600:.2f} h", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
