"""`jepakit bench` times real steps and writes valid JSON (no timing assertions)."""

from __future__ import annotations

import json

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


def test_bench_rejects_zero_steps(repo_root, capsys):
    assert main(["bench", str(repo_root / "recipes/bench_vitt16_cpu.yaml"), "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
