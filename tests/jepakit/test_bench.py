"""`jepakit bench` times real steps and writes valid JSON (no timing assertions)."""

from __future__ import annotations

import json
import os

import pytest

from jepakit.cli import main

TINY_BENCH = ["encoder.params.image_size=64", "encoder.params.patch_size=8",
              "encoder.params.depth=1", "predictor.params.depth=1"]


def test_bench_runs_two_steps_and_writes_json(repo_root, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", str(repo_root / "recipes/bench_vitt16_cpu.yaml"), *TINY_BENCH,
                 "--steps", "2", "--warmup", "1", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 2 and result["batch_size"] == 16
    assert result["median_step_s"] > 0 and result["images_per_s"] > 0
    assert result["model_flops_per_image"] > 0 and result["limit_flops_per_s"] > 0
    assert 0 < result["fraction_of_limit"]
    assert result["achieved_flops_per_s"] == result["model_flops_per_image"] * 16 / result["median_step_s"]
    assert "median step" in capsys.readouterr().out
    # back to back: the same FLOPs over the free-running step time
    assert result["free_running_images_per_s"] == 16 / result["free_running_step_s"]
    assert result["free_running_fraction_of_limit"] == pytest.approx(
        result["model_flops_per_image"] * 16 / result["free_running_step_s"]
        / result["limit_flops_per_s"])


def test_bench_rejects_zero_steps(repo_root, capsys):
    assert main(["bench", str(repo_root / "recipes/bench_vitt16_cpu.yaml"), "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_flop_counting_in_worker_processes_matches_counting_in_process(repo_root, monkeypatch):
    """The GPU path counts FLOPs in forked workers while the steps run: same numbers."""
    import torch

    from jepakit import bench
    from jepakit.method import build_method
    from jepakit.recipe import load_recipe
    from jepakit.registry import default_registry

    recipe = load_recipe(repo_root / "recipes/ijepa_tiny.yaml", TINY_BENCH)
    meta, masker = build_method(recipe, default_registry(), "meta")
    generator = torch.Generator().manual_seed(0)
    plan = [masker(4, meta.encoder.patch_grid, generator) for _ in range(5)]
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 6)
    forked = bench.FlopCounting(meta, plan, parallel=True)
    assert forked._pending is not None  # really went to worker processes
    assert forked.result() == bench.FlopCounting(meta, plan, parallel=False).result()
    assert len(forked.result()) == len({bench.mask_key(m) for m in plan})


def test_configure_device_turns_cudnn_attention_off_only_for_cuda():
    """Shapes change every JEPA step; cuDNN attention would rebuild a graph for each."""
    import torch

    from jepakit.runtime import configure_device

    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        configure_device(torch.device("cpu"))
        assert torch.backends.cuda.cudnn_sdp_enabled()
        configure_device(torch.device("cuda"))  # sets a flag: needs no GPU
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
        configure_device(torch.device("cuda"), static_shapes=True)  # one graph per bucket
        assert torch.backends.cuda.cudnn_sdp_enabled()
        os.environ["JEPAKIT_CUDNN_ATTENTION"] = "0"
        configure_device(torch.device("cuda"), static_shapes=True)
        assert not torch.backends.cuda.cudnn_sdp_enabled()
    finally:
        os.environ.pop("JEPAKIT_CUDNN_ATTENTION", None)
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_matmul_limit_stops_at_its_time_budget():
    """An emulated dtype can take tens of seconds per matmul: the limit measurement
    stops after one warm-up and one timed run once its budget is spent; it times
    `F.linear`, the kernel the model's layers use."""
    import torch
    from torch.overrides import TorchFunctionMode

    from jepakit import bench

    class CountProducts(TorchFunctionMode):
        calls = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") == "linear":
                CountProducts.calls += 1
            return func(*args, **(kwargs or {}))

    with CountProducts():
        flops = bench.matmul_throughput(torch.device("cpu"), torch.float32, n=64, repeats=50,
                                        budget_s=0.0)
    assert CountProducts.calls == 2 and flops > 0
    CountProducts.calls = 0
    with CountProducts():
        bench.matmul_throughput(torch.device("cpu"), torch.float32, n=64, repeats=5, budget_s=60.0)
    assert CountProducts.calls == 6  # warm-up, then every repeat: the budget was not spent


def test_bench_compile_compiles_each_mask_shape_before_timing(repo_root, tmp_path, monkeypatch):
    import jepakit.compile

    monkeypatch.setattr(jepakit.compile, "BACKEND", "aot_eager")  # no C++ generation
    out = tmp_path / "bench.json"
    code = main(["bench", str(repo_root / "recipes/bench_vitt16_cpu.yaml"), *TINY_BENCH,
                 "masker.params.length_buckets=2", "--steps", "3", "--warmup", "1", "--compile",
                 "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    graphs = result["compilations"]
    assert result["compiled"] and result["compile_s"] > 0
    assert graphs["target_encoder"] == 1
    assert 1 <= graphs["encoder"] <= 2 and 1 <= graphs["predictor"] <= 4
    assert graphs["predictor"] >= result["mask_shapes"]  # every timed shape was compiled first
