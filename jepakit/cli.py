"""The ``jepakit`` command line. User mistakes exit 2 with one line, no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jepakit.errors import JepakitError


def _cmd_run(args: argparse.Namespace) -> int:
    from jepakit.engine import build
    from jepakit.inspect import describe, format_count
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    if args.dry_run:
        recipe = load_recipe(args.recipe, args.overrides)
        info = describe(recipe, default_registry())
        print(f"recipe {args.recipe}: valid")
        print(f"  encoder   {recipe.encoder.name:<12} {format_count(info['encoder_params'])} parameters "
              f"({info['encoder_params']:,}), patch grid {info['patch_grid'][0]}x{info['patch_grid'][1]}")
        print(f"  predictor {recipe.predictor.name:<12} {format_count(info['predictor_params'])} "
              f"parameters ({info['predictor_params']:,})")
        print(f"  masks     {recipe.masker.name:<12} {info['context_tokens']} context, "
              f"{info['target_tokens']} target tokens per image")
        print(f"  compute   {format_count(info['train_flops_per_image'])}FLOP per image per step, "
              f"{format_count(info['train_flops_per_step'])}FLOP per step at batch "
              f"{recipe.train.batch_size}, {info['total_steps']:,} steps")
        return 0
    trainer = build(args.recipe, args.overrides, run_dir=args.run_dir)
    print(f"jepakit: training {trainer.recipe.name} for {trainer.total_steps} steps on "
          f"{trainer.device}; run directory {trainer.run_dir}", file=sys.stderr)
    s = trainer.fit()
    print(
        f"Trained {s['steps']} steps in {s['elapsed_s']:.1f} s ({s['images_per_s']:.1f} images/s). "
        f"Loss went from {s['first_loss']:.4f} (first logged step) to {s['final_loss']:.4f}. "
        f"Metrics: {s['run_dir']}/metrics.jsonl; recipe: {s['run_dir']}/recipe.yaml; "
        f"checkpoints: {s['run_dir']}/checkpoints/."
    )
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from jepakit.contracts import KINDS
    from jepakit.registry import default_registry

    registry = default_registry()
    kinds = [args.kind] if args.kind else list(KINDS)
    rows = [(kind, c.name, c.provider) for kind in kinds
            for c in sorted(registry.components(kind).values(), key=lambda c: c.name)]
    widths = [max(len(r[i]) for r in rows + [("kind", "name", "provider")]) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(("kind", "name", "provider"), widths)))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return 0


def _cmd_recipe_show(args: argparse.Namespace) -> int:
    from jepakit.recipe import dump_recipe, load_recipe

    print(dump_recipe(load_recipe(args.recipe, args.overrides)), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    from jepakit import __version__

    p = argparse.ArgumentParser(prog="jepakit", description="Train joint-embedding predictive architectures.")
    p.add_argument("--version", action="version", version=f"jepakit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train from a recipe")
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("overrides", nargs="*", help="key.path=value overrides")
    run.add_argument("--run-dir", help="where to write the run (default runs/NAME-TIME)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate, build models on the meta device, print sizes and FLOPs")
    run.set_defaults(func=_cmd_run)

    plugins = sub.add_parser("plugins", help="list registered components")
    plugins.add_argument("--kind", choices=["encoder", "masker", "predictor", "target_updater",
                                            "loss", "dataset"])
    plugins.set_defaults(func=_cmd_plugins)

    recipe = sub.add_parser("recipe", help="recipe tools")
    recipe_sub = recipe.add_subparsers(dest="recipe_command", required=True)
    show = recipe_sub.add_parser("show", help="print the resolved recipe, defaults filled in")
    show.add_argument("recipe")
    show.add_argument("overrides", nargs="*")
    show.set_defaults(func=_cmd_recipe_show)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except JepakitError as exc:
        print(f"jepakit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jepakit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
