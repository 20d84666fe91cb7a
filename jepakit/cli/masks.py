"""``jepakit masks show|stats RECIPE [overrides]``: look at what a recipe's masker draws.

    jepakit masks show recipes/ijepa_tiny.yaml --out masks.png --n 8
    jepakit masks stats recipes/ijepa_tiny.yaml masker.params.mode=official --heatmap cov.png
    jepakit masks show recipes/ijepa_tiny.yaml masker.name=vjepa_multiblock --grid 8 8 8 --out v.png

``show`` draws sampled context and targets over images from the recipe's data (on a
video grid (frames, rows, columns), a few frames of each clip side by side; with
several mask configurations, a context and a target row each); ``--grid`` replaces
the encoder's patch grid (e.g. to look at video masks over an image recipe, whose
images are then still clips); ``stats`` prints mean context and target tokens, the histogram of token counts
(with ``masker.params.length_buckets`` on, the buckets), and the per-patch coverage
(the least and most likely patch to be in the context and in a target, and the
patches never covered), and can write the coverage heatmap as a PNG.
"""

from __future__ import annotations

import argparse
from itertools import islice
from typing import Any

import torch

from jepakit.errors import ConfigError


def register(sub: Any) -> None:
    masks = sub.add_parser("masks", help="draw and measure a recipe's masks")
    masks_sub = masks.add_subparsers(dest="masks_command", required=True)

    show = masks_sub.add_parser("show", help="draw sampled context and targets over images")
    show.add_argument("recipe", help="recipe YAML file")
    show.add_argument("overrides", nargs="*", help="key.path=value overrides")
    show.add_argument("--out", required=True, help="PNG file to write")
    show.add_argument("--n", type=int, default=8, help="images to draw (default 8)")
    show.add_argument("--seed", type=int, default=None,
                      help="mask generator seed (default: the recipe's train.seed)")
    show.add_argument("--panel", type=int, default=128, help="pixels per image panel")
    show.add_argument("--frames", type=int, default=4,
                      help="token frames drawn per clip on a video grid (default 4)")
    _grid_option(show)
    show.set_defaults(func=show_command)

    stats = masks_sub.add_parser("stats", help="mean mask sizes and per-patch coverage")
    stats.add_argument("recipe", help="recipe YAML file")
    stats.add_argument("overrides", nargs="*", help="key.path=value overrides")
    stats.add_argument("--batches", type=int, default=50, help="batches to draw (default 50)")
    stats.add_argument("--batch-size", type=int, default=None,
                       help="images per batch (default: the recipe's train.batch_size; context "
                            "lengths are equalised over a batch, so this matters)")
    stats.add_argument("--seed", type=int, default=None,
                       help="mask generator seed (default: the recipe's train.seed)")
    stats.add_argument("--heatmap", help="also write the coverage heatmap to this PNG")
    _grid_option(stats)
    stats.set_defaults(func=stats_command)


def _grid_option(parser: Any) -> None:
    parser.add_argument("--grid", type=int, nargs="+", metavar="N", default=None,
                        help="patch grid to draw on instead of the encoder's: ROWS COLUMNS, or "
                             "FRAMES ROWS COLUMNS for a video grid")


def _positive(name: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"--{name} must be > 0, got {value}")


def _grid(args: argparse.Namespace, model: Any, recipe: Any, masker: Any) -> tuple[int, ...]:
    """The patch grid to draw on (``--grid`` or the encoder's), checked against the
    grid ranks the masker supports."""
    from jepakit.masking import require_rank

    if args.grid is None:
        grid = tuple(int(s) for s in model.encoder.patch_grid)
    else:
        if len(args.grid) not in (2, 3) or min(args.grid) <= 0:
            raise ConfigError(f"--grid takes 2 (rows, columns) or 3 (frames, rows, columns) "
                              f"positive sides, got {' '.join(map(str, args.grid))}")
        grid = tuple(args.grid)
    require_rank(masker, grid, recipe.spec("masker").name)
    return grid


def _setup(recipe_path: str, overrides: list[str]) -> tuple[Any, Any, Any, Any]:
    """The recipe, registry, masker and the encoder-built JEPA on the meta device."""
    from jepakit.method import build_method
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    registry = default_registry()
    recipe = load_recipe(recipe_path, overrides, registry)
    model, masker = build_method(recipe, registry, device="meta")
    if masker is None:
        raise ConfigError(f"method '{recipe.spec('method').name}' draws no masks "
                          "(its recipe has no masker)")
    return recipe, registry, masker, model


def _describe(recipe: Any) -> str:
    params = recipe.spec("masker").params
    mode = f" (mode {params['mode']})" if isinstance(params, dict) and "mode" in params else ""
    return f"masker {recipe.spec('masker').name}{mode}"


def _sample_images(dataset: Any, n: int) -> list[torch.Tensor]:
    """The first ``n`` images of a map-style or iterable dataset (labels dropped)."""
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        samples = [dataset[i] for i in range(min(n, len(dataset)))]
    else:
        samples = list(islice(iter(dataset), n))
    return [s[0] if isinstance(s, (tuple, list)) else s for s in samples]


def _lengths(masks: Any, pairing: str) -> str:
    """``context 150 tokens, targets 20 + 20`` or, per configuration, ``context/target
    150/40, 60/180 tokens``."""
    if pairing == "zip":
        pairs = ", ".join(f"{c.shape[1]}/{t.shape[1]}" for c, t in zip(masks.context, masks.targets))
        return f"context/target {pairs} tokens"
    return (f"context {sum(m.shape[1] for m in masks.context)} tokens, "
            f"targets {' + '.join(str(m.shape[1]) for m in masks.targets)}")


def show_command(args: argparse.Namespace) -> int:
    from jepakit.drawing import check_output, draw_samples, save_png
    from jepakit.masking import format_grid

    _positive("n", args.n)
    _positive("panel", args.panel)
    _positive("frames", args.frames)
    out = check_output(args.out)
    recipe, registry, masker, model = _setup(args.recipe, args.overrides)
    grid = _grid(args, model, recipe, masker)
    frames = getattr(model.encoder, "num_frames", None)  # a video encoder's clip length
    context = {} if frames is None else {"num_frames": int(frames)}
    dataset = registry.create(
        "dataset", recipe.spec("dataset").name, recipe.spec("dataset").params, path="data.params",
        image_size=model.encoder.image_size[0], in_chans=model.encoder.in_chans, seed=recipe.train.seed,
        **context,
    )
    images = _sample_images(dataset, args.n)
    if not images:
        raise ConfigError(f"data '{recipe.spec('dataset').name}' yielded no images")
    seed = recipe.train.seed if args.seed is None else args.seed
    masks = masker(len(images), grid, torch.Generator().manual_seed(seed))
    pairing = getattr(masker, "pairing", "all")
    noun = "clips" if len(grid) == 3 else "images"
    title = (f"{recipe.name}: {_describe(recipe)}, grid {format_grid(grid)}, seed {seed}; "
             f"{_lengths(masks, pairing)}")
    save_png(draw_samples(images, masks, grid, title=title, panel=args.panel, pairing=pairing,
                          frames=args.frames), out)
    print(f"wrote {out}: {len(images)} {noun}, {_describe(recipe)}, grid {format_grid(grid)}")
    return 0


def stats_command(args: argparse.Namespace) -> int:
    from jepakit.coverage import format_coverage, measure
    from jepakit.maskcheck import CheckingMasker
    from jepakit.masking import format_grid

    _positive("batches", args.batches)
    if args.batch_size is not None:
        _positive("batch-size", args.batch_size)
    if args.heatmap:
        from jepakit.drawing import check_output

        check_output(args.heatmap)
    recipe, _, masker, model = _setup(args.recipe, args.overrides)
    masker = CheckingMasker(masker, recipe.spec("masker").name)  # the contract, every batch
    batch_size = args.batch_size or recipe.train.batch_size
    seed = recipe.train.seed if args.seed is None else args.seed
    grid = _grid(args, model, recipe, masker)
    cov = measure(masker, grid, batch_size, args.batches, seed=seed)
    noun = "clips" if len(grid) == 3 else "images"
    header = (f"{_describe(recipe)} on a {format_grid(grid)} grid: {cov.images} {noun} "
              f"({args.batches} batches of {batch_size}), seed {seed}")
    print(header)
    levels = getattr(masker, "length_levels", None)
    levels = levels(grid, batch_size) if callable(levels) else None
    if levels is not None:
        print(f"  buckets: context lengths {list(levels.context)}, target lengths "
              f"{list(levels.targets)}")
    for line in format_coverage(cov):
        print("  " + line)
    if args.heatmap:
        from jepakit.drawing import draw_coverage, save_png

        path = save_png(draw_coverage(cov, title=header), args.heatmap)
        print(f"wrote {path}")
    return 0
