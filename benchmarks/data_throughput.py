"""Images/s of the full data pipeline per worker count, next to a plain PIL decode loop.

The pipeline is what training runs: read tar shards, decode, augment
(RandomResizedCrop + normalise), collate and draw multi-block masks, through
the StatefulDataLoader. The baseline reads the same shards and only decodes
each image with PIL in one process: the floor any pipeline pays.

    .venv/bin/python benchmarks/data_throughput.py                     # Fashion-MNIST shards
    .venv/bin/python benchmarks/data_throughput.py --source jpeg       # 256x192 JPEGs, 224 px crops
    .venv/bin/python benchmarks/data_throughput.py --urls 'shards/shard-{000000..000009}.tar'

Timing starts once the workers are up and the batches they prefetched during start-up
(2 per worker) are consumed, so neither start-up nor a full prefetch buffer counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FMNIST = REPO / "data" / "fashion-mnist" / "train" / "index.json"


def jpeg_shards(root: Path, count: int) -> str:
    """``count`` smooth random 256x192 JPEGs (ImageNet-like size and entropy) as shards."""
    from jepakit.data.shards import make_shards

    rng = np.random.default_rng(0)
    src = root / "jpegs"
    src.mkdir()
    for i in range(count):
        small = rng.random((12, 16, 3)) * 255
        image = Image.fromarray(small.astype("uint8")).resize((256, 192), Image.BICUBIC)
        noise = rng.normal(0, 12, (192, 256, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype("uint8")
        Image.fromarray(pixels).save(src / f"{i:05d}.jpg", quality=90)
    make_shards(src, root / "shards", shard_size=max(1, count // 8), progress=False)
    return str(root / "shards" / "index.json")


def pil_loop(urls: list[str], limit: int) -> float:
    """Images/s of reading the shards and decoding each image with PIL, one process."""
    import io

    from jepakit.data import tar

    done, start = 0, time.perf_counter()
    for url in urls:
        with open(url, "rb") as f:
            for name, data in tar.members(tar.open_stream(f)):
                if name.rsplit(".", 1)[-1] in ("jpg", "png", "jpeg", "webp"):
                    Image.open(io.BytesIO(data)).convert("RGB").load()
                    done += 1
                    if done >= limit:
                        return done / (time.perf_counter() - start)
    return done / (time.perf_counter() - start)


def pipeline(recipe: Any, urls: str, workers: int, batch: int, batches: int) -> float:
    """Images/s of shards -> decode -> augment -> collate with masks, through the loader."""
    from jepakit.data.loader import MaskStream, build_loader
    from jepakit.registry import default_registry

    registry = default_registry()
    enc = recipe.encoder.params
    size, patch, chans = int(enc["image_size"]), int(enc["patch_size"]), int(enc["in_chans"])
    params = dict(recipe.data.params) if recipe.data.name == "webdataset" else {}
    params.update(urls=urls, mode="resampled", epoch_samples=10**9)
    dataset = registry.create("dataset", "webdataset", params, image_size=size, in_chans=chans,
                              seed=0)
    masker = registry.create("masker", recipe.masker.name, recipe.masker.params)
    masks = MaskStream(masker, (size // patch, size // patch), seed=0)
    loader = build_loader(dataset, batch, workers, seed=0)
    it = iter(loader)
    for _ in range(1 + 2 * workers):  # start-up, and the batches prefetched meanwhile
        next(it)
    start = time.perf_counter()
    for step in range(batches):
        next(it)
        masks(batch, step)  # the trainer draws each step's masks in the main process
    rate = batches * batch / (time.perf_counter() - start)
    del it, loader
    return rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["fmnist", "jpeg"], default="fmnist",
                   help="fmnist: the shards `make data` writes; jpeg: generated 256x192 JPEGs")
    p.add_argument("--urls", help="your own shards (overrides --source)")
    p.add_argument("--recipe", help="recipe for crop size, channels and masker "
                                    "(default: ijepa_fmnist for fmnist, ijepa_vitb16 for jpeg)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="timed batches per worker count")
    p.add_argument("--jpegs", type=int, default=512, help="images generated for --source jpeg")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    torch.set_num_threads(1)

    from jepakit_data.webdataset import WebDatasetConfig, resolve_urls

    from jepakit.data.index import read_index, shard_urls
    from jepakit.recipe import load_recipe

    tmp = tempfile.TemporaryDirectory()
    urls = args.urls
    if urls is None and args.source == "fmnist":
        if not FMNIST.is_file():
            print(f"{FMNIST} not found: run `make data` first, or use --source jpeg", file=sys.stderr)
            return 2
        urls = str(FMNIST)
    elif urls is None:
        urls = jpeg_shards(Path(tmp.name), args.jpegs)
    default = "ijepa_fmnist" if args.source == "fmnist" and not args.urls else "ijepa_vitb16"
    recipe = load_recipe(args.recipe or REPO / "recipes" / f"{default}.yaml")
    shard_list = (shard_urls(urls, read_index(urls)) if urls.endswith(".json")
                  else resolve_urls(WebDatasetConfig(urls=urls))[0])

    images = args.batch_size * args.batches
    rows: list[dict[str, Any]] = [{"what": "PIL decode loop (1 process)",
                                   "images_per_s": pil_loop(shard_list, images)}]
    for workers in args.workers:
        rate = pipeline(recipe, urls, workers, args.batch_size, args.batches)
        rows.append({"what": f"full pipeline, {workers} worker(s)", "workers": workers,
                     "images_per_s": rate})
    size = recipe.encoder.params["image_size"]
    print(f"data: {urls}; crops {size} px; batch {args.batch_size}; {args.batches} timed "
          f"batches; 1 torch thread in the main process")
    for row in rows:
        print(f"  {row['what']:<32} {row['images_per_s']:>9.0f} images/s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
