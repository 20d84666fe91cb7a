"""``jepakit bench RECIPE [overrides] [--steps N] [--warmup W] [--compile] [--json PATH]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jepakit.errors import JepakitError


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="time full training steps on synthetic data")
    bench.add_argument("recipe")
    bench.add_argument("overrides", nargs="*", help="key.path=value overrides")
    bench.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    bench.add_argument("--compile", action="store_true", help="compile the step's modules, one graph per mask shape "
                       "(pair with masker.params.length_buckets)")
    bench.add_argument("--json", dest="json_path", help="also write the results here")
    bench.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    from jepakit.bench import run_bench
    from jepakit.inspect import format_count

    if args.steps < 1 or args.warmup < 0:
        raise JepakitError("--steps must be >= 1 and --warmup >= 0")
    if any(o.replace(" ", "") == "train.precision=bf16" for o in args.overrides):
        import torch

        from jepakit.runtime import cpu_has_native_bf16

        if not torch.cuda.is_available() and not cpu_has_native_bf16():
            print("jepakit: warning: this CPU has no native bf16 (AVX512-BF16/AMX); "
                  "bf16 matmuls are emulated and far slower than fp32", file=sys.stderr)
    r = run_bench(args.recipe, args.overrides, steps=args.steps, warmup=args.warmup,
                  compile_model=args.compile)
    limit = r["limit_flops_per_s"]
    print(f"{r['recipe']} on {r['device']} ({r['threads']} threads), {r['precision']}, "
          f"batch {r['batch_size']}")
    print(f"  median step      {r['median_step_s']:.4f} s  ({r['images_per_s']:.1f} images/s)")
    print(f"  back to back     {r['free_running_step_s']:.4f} s  "
          f"({r['free_running_images_per_s']:.1f} images/s; no sync between steps, as in training)")
    print(f"  model FLOPs      {format_count(r['model_flops_per_image'])}FLOP per image per step")
    print(f"  achieved         {format_count(r['achieved_flops_per_s'])}FLOP/s")
    if limit:
        print(f"  limit            {format_count(limit)}FLOP/s ({r['limit_source']})")
        print(f"  fraction         {100 * r['fraction_of_limit']:.1f}% of the limit "
              f"({100 * r['free_running_fraction_of_limit']:.1f}% back to back)")
    print(f"  peak memory      {r['peak_memory_bytes'] / 2**30:.2f} GiB")
    if r["compiled"]:
        counts = ", ".join(f"{name} {n}" for name, n in r["compilations"].items())
        print(f"  compiled         {counts} graphs in {r['compile_s']:.1f} s "
              f"({r['mask_shapes']} mask shapes timed)")
    if args.json_path:
        path = Path(args.json_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r, indent=2) + "\n")
        except OSError as exc:
            raise JepakitError(f"cannot write {path}: {exc.strerror}") from None
    return 0
