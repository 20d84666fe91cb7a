"""``jepakit run RECIPE [overrides] [--run-dir DIR] [--dry-run]``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="train from a recipe")
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("overrides", nargs="*", help="key.path=value overrides")
    run.add_argument("--run-dir", help="where to write the run (default runs/NAME-TIME)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate, build models on the meta device, print sizes and FLOPs")
    run.add_argument("--resume", metavar="auto|PATH",
                     help="continue from the newest valid checkpoint of --run-dir, or from PATH")
    dist = run.add_argument_group("distributed (hands off to torch.distributed.run)")
    dist.add_argument("--nproc-per-node", type=int, default=1, help="processes on this node")
    dist.add_argument("--nnodes", type=int, default=1, help="number of nodes")
    dist.add_argument("--node-rank", type=int, default=0, help="this node's rank")
    dist.add_argument("--rdzv-endpoint", help="HOST:PORT of the rendezvous (multi-node)")
    dist.add_argument("--max-restarts", type=int, default=0,
                      help="restart failed workers this often; they resume from the last checkpoint")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.dry_run:
        return dry_run(args.recipe, args.overrides)
    if (args.nproc_per_node > 1 or args.nnodes > 1) and "RANK" not in os.environ:
        return launch(args)
    from jepakit import distributed
    from jepakit.engine import build

    try:
        trainer = build(args.recipe, args.overrides, run_dir=args.run_dir, resume=args.resume)
        if trainer.env.is_main:
            print(f"jepakit: training {trainer.recipe.name} for {trainer.total_steps} steps on "
                  f"{trainer.env.world_size} x {trainer.device}; run directory {trainer.run_dir}",
                  file=sys.stderr)
        s = trainer.fit()
    finally:
        distributed.shutdown()
    if trainer.env.is_main:
        print(summary_line(s))
    return 0


def summary_line(s: dict) -> str:
    end = "Preempted (SIGTERM): checkpoint saved. " if s.get("preempted") else ""
    bad = (f"Skipped {s['bad_samples']} bad samples of {s['samples_read']} read (see run.log). "
           if s.get("bad_samples") else "")
    return (
        f"{end}Trained {s['steps']} steps in {s['elapsed_s']:.1f} s "
        f"({s['images_per_s']:.1f} {s.get('sample_unit', 'images')}/s). Loss went from {s['first_loss']:.4f} (first "
        f"logged step) to {s['final_loss']:.4f}. {bad}Metrics: {s['run_dir']}/metrics.jsonl; "
        f"recipe: {s['run_dir']}/recipe.yaml; checkpoints: {s['run_dir']}/checkpoints/."
        + probe_line(s)
    )


def probe_line(s: dict) -> str:
    """The end-of-run probe's result, when a plugin put one in the summary."""
    if "probe_accuracy" not in s:
        return ""
    return (f"\nLinear probe on {s['probe_samples']} {s['probe_data']}: "
            f"{s['probe_accuracy']:.2f} (random init {s['probe_random_init_accuracy']:.2f}).")


def launch(args: argparse.Namespace) -> int:
    """Re-run this command under torch.distributed.run with a run directory fixed up
    front, so every process (and every restart) writes to and resumes from the same place."""
    from jepakit import distributed
    from jepakit.engine import default_run_dir
    from jepakit.errors import ConfigError
    from jepakit.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)  # fail fast, before any process starts
    if args.nnodes > 1 and not args.run_dir:
        raise ConfigError("--nnodes > 1 needs --run-dir on storage that every node shares")
    run_dir = args.run_dir or str(default_run_dir(recipe))
    resume = args.resume or ("auto" if args.max_restarts > 0 else None)
    run_args = [args.recipe, *args.overrides, "--run-dir", run_dir]
    if resume:
        run_args += ["--resume", resume]
    argv = distributed.torchrun_argv(run_args, args.nproc_per_node, args.nnodes, args.node_rank,
                                     args.rdzv_endpoint, args.max_restarts)
    print(f"jepakit: torchrun {' '.join(argv)}", file=sys.stderr)
    return distributed.launch(argv)


def dry_run(path: str, overrides: list[str]) -> int:
    from jepakit.inspect import describe, format_count
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    recipe = load_recipe(path, overrides)
    info = describe(recipe, default_registry())
    grid = info["patch_grid"]
    rows: list[tuple[str, str, str]] = [("method", recipe.spec("method").name, "")]
    for name, key in (("encoder", "encoder_params"), ("predictor", "predictor_params"),
                      ("projector", "projector_params")):
        if key in info:
            extra = f", patch grid {'x'.join(map(str, grid))}" if name == "encoder" else ""
            rows.append((name, recipe.spec(name).name,
                         f"{format_count(info[key])} parameters ({info[key]:,}){extra}"))
    if recipe.has("target_updater"):
        rows.append(("target", recipe.spec("target_updater").name, ""))
    terms = ", ".join(f"{s.name}" + (f" x{s.weight:g}" if s.weight != 1.0 else "")
                      for s in recipe.specs("loss"))
    rows.append(("loss", terms, ""))
    if recipe.views:
        rows.append(("views", " + ".join(f"{g.count}x{g.size}px" for g in recipe.views),
                     "global views first"))
    unit = "clip" if info.get("num_frames") else "image"
    if "context_tokens" in info:
        rows.append(("masks", recipe.spec("masker").name, f"{info['context_tokens']} context, "
                     f"{info['target_tokens']} target tokens per {unit}"))
    rows.append(("compute", f"{format_count(info['train_flops_per_image'])}FLOP/{unit}",
                 f"{format_count(info['train_flops_per_step'])}FLOP per step at batch "
                 f"{recipe.train.batch_size}, {info['total_steps']:,} steps"))
    print(f"recipe {path}: valid")
    width = max(len(r[1]) for r in rows)
    for label, name, detail in rows:
        print(f"  {label:<9} {name:<{width}}  {detail}".rstrip())
    return 0
