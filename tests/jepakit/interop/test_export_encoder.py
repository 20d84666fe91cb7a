"""`jepakit export`: a trained run's target encoder as safetensors, and as a timm
folder that timm's class-token-free, average-pooled ViT loads strictly with the
same features."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import jepakit
from jepakit.cli import main
from jepakit.interop import encoder_from_state, load_safetensors_encoder, load_source

torch.set_num_threads(1)

TOLERANCE = 1e-5
SMALL = ["train.steps=2", "train.batch_size=4", "encoder.params.depth=2",
         "predictor.params.depth=1", "logging.progress=false", "monitors.probe_samples=0", "checkpoint.every_steps=1",
         "data.params.num_samples=16"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, ):
    root = tmp_path_factory.mktemp("export")
    from conftest import REPO_ROOT

    jepakit.build(REPO_ROOT / "recipes" / "ijepa_tiny.yaml", SMALL, run_dir=root / "run").fit()
    return root / "run"


def _images(n=2, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_load_source_takes_the_newest_checkpoint_of_a_run(run_dir):
    state, path = load_source(run_dir)
    assert path.name == "step_00000002.pt" and state["step"] == 2
    assert load_source(path)[1] == path


def test_safetensors_round_trip(run_dir, tmp_path, capsys):
    out = tmp_path / "encoder.safetensors"
    assert main(["export", str(run_dir), "--format", "safetensors", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    state, _ = load_source(run_dir)
    tensors = load_file(str(out))
    assert set(tensors) == set(state["target_encoder"])
    assert all(torch.equal(tensors[k], state["target_encoder"][k]) for k in tensors)
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["jepakit.encoder"])["name"] == "vit"
    encoder, _ = encoder_from_state(state)
    again = load_safetensors_encoder(out)
    with torch.no_grad():
        assert torch.equal(again(_images()), encoder(_images()))


def test_timm_export_loads_strictly_and_matches(run_dir, tmp_path, capsys):
    out = tmp_path / "timm"
    assert main(["export", str(run_dir), "--format", "timm", str(out)]) == 0
    assert "loads strictly" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"].endswith("_gap_224")  # the vit_*_gap family
    args = config["model_args"]
    assert (args["class_token"], args["global_pool"], args["fc_norm"]) == (False, "avg", False)

    model = timm.create_model(config["architecture"], pretrained=False, **args)
    model.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
    model.eval()
    encoder, _ = encoder_from_state(load_source(run_dir)[0])
    images = _images()
    with torch.no_grad():
        tokens = encoder(images)
        token_diff = float((model.forward_features(images) - tokens).abs().max())
        pooled_diff = float((model(images) - tokens.mean(dim=1)).abs().max())
    print(f"timm export: max token difference {token_diff:.2e}, pooled {pooled_diff:.2e}")
    assert token_diff <= TOLERANCE and pooled_diff <= TOLERANCE

    # timm's own folder loader, offline
    local = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        assert float((local(images) - tokens.mean(dim=1)).abs().max()) <= TOLERANCE


def test_online_encoder_can_be_exported(run_dir, tmp_path):
    out = tmp_path / "online.safetensors"
    assert main(["export", str(run_dir), "--format", "safetensors", "--encoder", "online",
                 str(out)]) == 0
    state, _ = load_source(run_dir)
    tensors = load_file(str(out))
    assert all(torch.equal(tensors[k], state["encoder"][k]) for k in tensors)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jepakit: error:"), err
    return lines[0]


def test_user_mistakes_exit_2_with_one_line(run_dir, tmp_path, capsys):
    cases = [
        ([str(run_dir), "--format", "onnx", str(tmp_path / "x")], "unknown export format"),
        ([str(tmp_path / "nope"), "--format", "timm", str(tmp_path / "x")],
         "no such run directory"),
        ([str(tmp_path), "--format", "timm", str(tmp_path / "x")], "without checkpoints"),
        ([str(run_dir), "--format", "safetensors", "--encoder", "student", str(tmp_path / "x")],
         "'target' or 'online'"),
        ([str(run_dir), "--format", "safetensors", str(run_dir / "recipe.yaml")], "--overwrite"),
    ]
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, foreign)
    cases.append(([str(foreign), "--format", "timm", str(tmp_path / "y")],
                  "jepakit convert ijepa-official"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 10)
    cases.append(([str(garbage), "--format", "timm", str(tmp_path / "z")], "unreadable"))
    for argv, expected in cases:
        assert main(["export", *argv]) == 2, argv
        assert expected in _one_line(capsys.readouterr().err), argv
