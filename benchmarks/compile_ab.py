"""Eager against compiled (and fp32 against bf16) training steps, interleaved on one machine.

    python benchmarks/compile_ab.py [RECIPE] [overrides ...] [--configs eager-fp32 compiled-fp32 ...]
        [--buckets 3] [--rounds 5] [--steps 3] [--json PATH]

Every configuration is built once in this process (compiled ones compile every mask
shape first, untimed). Then, round by round, each configuration times ``--steps``
full training steps on the same masks, in an order that rotates every round, so a
machine shared with other work slows all of them alike; the report gives each
round's ratios and their median. Configurations: ``eager|compiled`` - ``fp32|bf16``
[``-nobuckets``: the masker without ``length_buckets``, i.e. the unbucketed default,
drawing its own masks]. The CPU model and its vector flags are printed and recorded
with the figures: CPUs of one class differ (AVX2 only, AVX-512, AMX).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from jepakit.bench import StepRunner, mask_key
from jepakit.compile import compilations
from jepakit.recipe import load_recipe
from jepakit.registry import default_registry
from jepakit.runtime import configure_device, select_device

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_description() -> dict[str, Any]:
    """Model name and the vector flags that decide fp32/bf16 speed (as lscpu shows them)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"model": model, "flags": [f for f in FLAGS if f in flags],
            "threads": torch.get_num_threads()}


def parse_config(name: str) -> tuple[bool, str, bool]:
    parts = name.split("-")
    if len(parts) not in (2, 3) or parts[0] not in ("eager", "compiled") \
            or parts[1] not in ("fp32", "bf16") or parts[2:] not in ([], ["nobuckets"]):
        raise SystemExit(f"compile_ab: unknown configuration {name!r} "
                         "(expected eager|compiled-fp32|bf16[-nobuckets])")
    return parts[0] == "compiled", parts[1], parts[2:] == ["nobuckets"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", nargs="?", default="recipes/bench_vitt16_cpu.yaml")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--configs", nargs="+",
                   default=["eager-fp32", "compiled-fp32", "eager-bf16", "compiled-bf16"])
    p.add_argument("--buckets", type=int, default=3, help="masker.params.length_buckets")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration and round")
    p.add_argument("--json", dest="json_path")
    args = p.parse_args()
    registry = default_registry()
    cpu = cpu_description()
    print(f"CPU: {cpu['model']}, flags {' '.join(cpu['flags']) or '-'}, "
          f"{cpu['threads']} threads; torch {torch.__version__}", flush=True)
    total = args.rounds * args.steps
    runners: dict[str, StepRunner] = {}
    plans: dict[bool, list] = {}
    setup: dict[str, float] = {}
    for name in args.configs:
        compiled, precision, nobuckets = parse_config(name)
        buckets = 0 if nobuckets else args.buckets
        recipe = load_recipe(args.recipe, [*args.overrides, f"train.precision={precision}",
                                           f"masker.params.length_buckets={buckets}"], registry)
        device = select_device(recipe.train.device)
        configure_device(device)
        runner = StepRunner(recipe, registry, device, total + 64, compiled)
        if nobuckets not in plans:  # one mask sequence per masker, shared by its configurations
            generator = torch.Generator().manual_seed(recipe.train.seed)
            plans[nobuckets] = [runner.masker(runner.batch, runner.model.encoder.patch_grid, generator)
                                for _ in range(total)]
        start = time.perf_counter()
        for masks in {mask_key(m): m for m in plans[nobuckets]}.values():
            runner.step(masks, 0)  # compiles each shape (eager: warms the kernels)
        setup[name] = time.perf_counter() - start
        runners[name] = runner
        graphs = {k: compilations(m) for k, m in runner.modules.items()}
        print(f"{name}: ready in {setup[name]:.1f} s"
              + (f", graphs {graphs}" if compiled else ""), flush=True)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        order = args.configs[r % len(args.configs):] + args.configs[:r % len(args.configs)]
        for name in order:
            _, _, nobuckets = parse_config(name)
            step_times = []
            for i in range(r * args.steps, (r + 1) * args.steps):
                start = time.perf_counter()
                runners[name].step(plans[nobuckets][i], i + 1)
                step_times.append(time.perf_counter() - start)
            times[name].append(statistics.median(step_times))
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in args.configs),
              flush=True)
    pairs = [(a, b) for a in args.configs for b in args.configs if a != b and _compare(a, b)]
    ratios = {f"{a} / {b}": [x / y for x, y in zip(times[a], times[b])] for a, b in pairs}
    print("median step time ratio over rounds (> 1: the second is faster):")
    for key, values in ratios.items():
        print(f"  {key:<40} {statistics.median(values):6.3f}   rounds: "
              + " ".join(f"{v:.2f}" for v in values))
    if args.json_path:
        result = {"recipe": args.recipe, "overrides": args.overrides, "buckets": args.buckets,
                  "rounds": args.rounds, "steps": args.steps, "cpu": cpu,
                  "torch": torch.__version__, "setup_s": setup,
                  "median_step_s": {n: statistics.median(t) for n, t in times.items()},
                  "round_step_s": times,
                  "median_ratio": {k: statistics.median(v) for k, v in ratios.items()},
                  "compilations": {n: {k: compilations(m) for k, m in r.modules.items()}
                                   for n, r in runners.items()},
                  "command": " ".join(sys.argv)}
        Path(args.json_path).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _compare(a: str, b: str) -> bool:
    """Pairs worth a ratio: eager vs compiled at one precision and masker, fp32 vs bf16
    in one mode, unbucketed eager vs bucketed compiled (the old default against the
    fast path: any precision when the unbucketed one is fp32)."""
    ca, pa, na = parse_config(a)
    cb, pb, nb = parse_config(b)
    if na == nb and pa == pb:
        return not ca and cb
    if na == nb and ca == cb:
        return pa == "fp32" and pb == "bf16"
    return na and not ca and not nb and cb and (pa == pb or pa == "fp32")


if __name__ == "__main__":
    sys.exit(main())
