"""Milliseconds per image to make views on one core: I-JEPA's single crop against
LeJEPA's multi-crop (2 x 224 px + 6 x 98 px), with and without the default
augmentations, and torchvision's 2-D Gaussian blur against jepakit's separable one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/views_cost.py

Ratios within one run are what to compare; absolute figures follow the machine's load.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import torch
from jepakit_data.transforms import train_transform
from PIL import Image
from torchvision.transforms import v2

from jepakit.data.views import MultiView, SeparableBlur, ViewGroup

LEJEPA = [ViewGroup(size=224, count=2, crop_scale=(0.3, 1.0)),
          ViewGroup(size=98, count=6, crop_scale=(0.05, 0.3))]


def ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    return timeit.timeit(fn, number=repeats) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    image = Image.fromarray((torch.rand(375, 500, 3, generator=g) * 255).byte().numpy())
    norm = {"in_chans": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    crops_only = MultiView([ViewGroup(size=g.size, count=g.count, crop_scale=g.crop_scale,
                                      augment=[]) for g in LEJEPA], **norm)
    augmented = MultiView(LEJEPA, **norm)
    single = train_transform(224)
    view = (torch.rand(3, 224, 224, generator=g) * 255).to(torch.uint8)
    rows = [
        ("I-JEPA: one 224 px crop", ms(lambda: single(image), args.repeats)),
        ("LeJEPA views, crops only", ms(lambda: crops_only(image, seed=1), args.repeats)),
        ("LeJEPA views, default augmentations", ms(lambda: augmented(image, seed=1), args.repeats)),
        ("blur of a 224 px view, torchvision 2-D", ms(lambda: v2.GaussianBlur(13, 2.0)(view),
                                                      args.repeats)),
        ("blur of a 224 px view, separable", ms(lambda: SeparableBlur(1.0, (2.0, 2.0))(view),
                                                args.repeats)),
    ]
    base = rows[0][1]
    for name, value in rows:
        print(f"{name:42s} {value:7.1f} ms  ({value / base:.1f}x the single crop)")


if __name__ == "__main__":
    main()
