"""``jepakit run --dry-run`` on a video recipe: parameters and FLOPs per clip."""

from __future__ import annotations

import re

import yaml
from vjepa_helpers import registry

from jepakit.cli import main

VITL16_16F_256 = {
    "name": "vjepa2-vitl16-dry-run",
    "method": {"name": "vjepa"},
    "encoder": {"name": "vit_video", "params": {"size": "large", "image_size": 256,
                                                "num_frames": 16, "positions": "rope"}},
    "masker": {"name": "tiny_zip", "params": {"sizes": [400, 1200]}},
    "predictor": {"name": "vjepa", "params": {"num_mask_tokens": 2}},
    "target_updater": {"name": "ema", "params": {"start": 0.99925, "end": 0.99925}},
    "loss": {"name": "l1"},
    "data": {"name": "synthetic"},
    "train": {"steps": 10, "batch_size": 8},
}


def test_dry_run_of_a_vitl16_16x256_recipe_counts_per_clip(tmp_path, monkeypatch, capsys):
    reg = registry()
    monkeypatch.setattr("jepakit.registry.default_registry", lambda: reg)
    path = tmp_path / "vjepa2_vitl16.yaml"
    path.write_text(yaml.safe_dump(VITL16_16F_256))
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    encoder_line = next(line for line in out.splitlines() if line.strip().startswith("encoder"))
    params = int(re.search(r"\(([\d,]+)\)", encoder_line).group(1).replace(",", ""))
    d, depth, n = 1024, 24, 8 * 16 * 16
    block = 12 * d * d + 13 * d  # qkv, proj, MLP 4d, biases and norms
    assert params == 3 * 2 * 16 * 16 * d + d + depth * block + 2 * d
    assert "patch grid 8x16x16" in encoder_line
    compute = next(line for line in out.splitlines() if line.strip().startswith("compute"))
    assert "FLOP/clip" in compute and "per clip" in out
    value, unit = re.search(r"([\d.]+)([KMGT])FLOP/clip", compute).groups()
    flops = float(value) * {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    forward = 2 * depth * 12 * d * d * n  # the target encoder's matmuls over the whole clip
    # target forward + 2 context passes (forward + backward) of (2048 - 400) and (2048 - 1200)
    # tokens + predictor; attention adds about a third at 2048 tokens
    context = 3 * ((n - 400) + (n - 1200)) / n
    assert (1 + context) * forward < flops < 1.6 * (1 + context) * forward, compute


def test_flops_scale_with_the_clip_length():
    from jepakit.inspect import describe
    from jepakit.recipe import load_recipe

    reg = registry()
    small = {**VITL16_16F_256, "encoder": {"name": "vit_video", "params": {
        "size": "tiny", "image_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1,
        "num_heads": 2}}, "predictor": {"name": "vjepa", "params": {"depth": 1, "embed_dim": 16,
                                                                    "num_heads": 2}},
        "masker": {"name": "tiny_zip", "params": {"sizes": [1, 2]}}}
    flops = []
    for frames in (4, 8):
        data = {**small, "encoder": {**small["encoder"], "params": {
            **small["encoder"]["params"], "num_frames": frames}}}
        flops.append(describe(load_recipe(data, (), reg), reg)["train_flops_per_image"])
    assert 1.9 < flops[1] / flops[0] < 2.3, flops


def test_bench_times_a_video_recipe(tmp_path):
    from jepakit.bench import run_bench

    reg = registry()
    tiny = {**VITL16_16F_256,
            "encoder": {"name": "vit_video", "params": {
                "size": "tiny", "image_size": 32, "patch_size": 8, "num_frames": 4,
                "embed_dim": 32, "depth": 1, "num_heads": 2}},
            "predictor": {"name": "vjepa", "params": {"depth": 1, "embed_dim": 16,
                                                      "num_heads": 2}},
            "masker": {"name": "tiny_zip", "params": {"sizes": [3, 12]}},
            "train": {"steps": 10, "batch_size": 2, "device": "cpu"}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    result = run_bench(str(path), steps=2, warmup=1, registry=reg)
    assert result["model_flops_per_image"] > 0 and result["images_per_s"] > 0
