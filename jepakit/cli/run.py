"""``jepakit run RECIPE [overrides] [--run-dir DIR] [--dry-run]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="train from a recipe")
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("overrides", nargs="*", help="key.path=value overrides")
    run.add_argument("--run-dir", help="where to write the run (default runs/NAME-TIME)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate, build models on the meta device, print sizes and FLOPs")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.dry_run:
        return dry_run(args.recipe, args.overrides)
    from jepakit.engine import build

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


def dry_run(path: str, overrides: list[str]) -> int:
    from jepakit.inspect import describe, format_count
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    recipe = load_recipe(path, overrides)
    info = describe(recipe, default_registry())
    grid = info["patch_grid"]
    print(f"recipe {path}: valid")
    print(f"  encoder   {recipe.encoder.name:<12} {format_count(info['encoder_params'])} parameters "
          f"({info['encoder_params']:,}), patch grid {grid[0]}x{grid[1]}")
    print(f"  predictor {recipe.predictor.name:<12} {format_count(info['predictor_params'])} "
          f"parameters ({info['predictor_params']:,})")
    print(f"  masks     {recipe.masker.name:<12} {info['context_tokens']} context, "
          f"{info['target_tokens']} target tokens per image")
    print(f"  compute   {format_count(info['train_flops_per_image'])}FLOP per image per step, "
          f"{format_count(info['train_flops_per_step'])}FLOP per step at batch "
          f"{recipe.train.batch_size}, {info['total_steps']:,} steps")
    return 0
