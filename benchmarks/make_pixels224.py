"""Write 10,000 Fashion-MNIST training images as 224 px RGB JPEGs in class folders, for
the raw-pixel probe at ImageNet size (d = 3 x 224 x 224 = 150,528; docs/results.md):

    .venv/bin/python benchmarks/make_pixels224.py OUT [--src /usr/share/datasets/fashion-mnist]
    OMP_NUM_THREADS=2 .venv/bin/jepakit eval linear --pixels --data OUT

Each image gets a random tint (seeded) so that it is truly RGB (a grey image would be
read as one channel, d = 50,176).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from jepakit.data.formats import FASHION_MNIST_CLASSES, fashion_mnist


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--count", type=int, default=10_000)
    args = p.parse_args()
    out = Path(args.out)
    images, labels = fashion_mnist(args.src, "train")
    rng = np.random.default_rng(0)
    for i in range(args.count):
        rgb = (images[i][..., None] * rng.uniform(0.5, 1.0, 3)).astype("uint8")
        folder = out / FASHION_MNIST_CLASSES[int(labels[i])].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).resize((224, 224), Image.BICUBIC).save(folder / f"{i:05d}.jpg",
                                                                      quality=90)


if __name__ == "__main__":
    main()
