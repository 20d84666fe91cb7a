"""The command line, in process: exit codes, one-line errors, listings, dry runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from jepakit.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes" / "ijepa_tiny.yaml")
VITH14 = str(ROOT / "recipes" / "ijepa_vith14.yaml")
IJEPA = [("encoder", "vit"), ("masker", "multiblock"), ("predictor", "ijepa"),
         ("target_updater", "ema"), ("loss", "smooth_l1")]


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("jepakit: error:")
    return lines[0]


def test_unknown_override_key_exits_2_with_one_line(capsys):
    assert main(["run", TINY, "train.nonexistent=1"]) == 2
    out, err = capsys.readouterr()
    line = _one_line_error(err)
    assert "train.nonexistent" in line
    assert out == ""


def test_typo_gets_a_hint(capsys):
    assert main(["run", TINY, "train.stpes=3"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "did you mean 'steps'" in line


def test_missing_recipe_exits_2(capsys, tmp_path):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "missing.yaml" in line


def test_unknown_component_exits_2(capsys):
    assert main(["recipe", "show", TINY, "masker.name=multiblok"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "multiblok" in line and "multiblock" in line


def test_malformed_override_exits_2(capsys):
    assert main(["recipe", "show", TINY, "noequals"]) == 2
    _one_line_error(capsys.readouterr().err)


def test_plugins_lists_ijepa_components_with_provider(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "name", "provider"]
    rows = [line.split(None, 2) for line in lines[1:]]
    for kind, name in IJEPA:
        matches = [r for r in rows if r[:2] == [kind, name]]
        assert len(matches) == 1, (kind, name, out)
        assert "jepakit" in matches[0][2]
    assert ["dataset", "synthetic"] in [r[:2] for r in rows]


def test_plugins_kind_filter(capsys):
    assert main(["plugins", "--kind", "masker"]) == 0
    rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows and all(r[0] == "masker" for r in rows)
    assert "multiblock" in [r[1] for r in rows]


def test_plugins_bad_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["plugins", "--kind", "maskers"])
    assert info.value.code == 2


def test_recipe_show_applies_overrides_and_fills_defaults(capsys):
    assert main(["recipe", "show", TINY, "train.steps=7"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["steps"] == 7
    masker = shown["masker"]["params"]
    # Not in the tiny recipe's YAML: filled in from the masker's config class.
    assert masker["allow_overlap"] is False
    assert masker["context_aspect"] == [1.0, 1.0]
    assert "max_tries" in masker
    assert shown["loss"]["params"] == {"normalize_targets": True}
    assert shown["optim"]["betas"] == [0.9, 0.999]


def test_dry_run_vith14_reports_paper_size(capsys):
    assert main(["run", VITH14, "--dry-run"]) == 0
    out = capsys.readouterr().out
    encoder_line = next(line for line in out.splitlines() if line.strip().startswith("encoder"))
    count = int(re.search(r"\(([\d,]+)\)", encoder_line).group(1).replace(",", ""))
    assert abs(count - 630e6) / 630e6 < 0.01, encoder_line
    assert "630" in encoder_line and "M" in encoder_line
    assert "16x16" in out  # 224 / 14


def test_run_trains_and_reports(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code = main([
        "run", "--run-dir", str(run_dir), TINY, "train.steps=2", "train.batch_size=4",
        "encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
        "predictor.params.embed_dim=16", "predictor.params.depth=1",
        "predictor.params.num_heads=2", "logging.every_steps=1", "logging.progress=false", "monitors.probe_samples=0",
        "data.params.num_samples=16", "train.device=cpu",
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "Trained 2 steps" in out
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert (run_dir / "recipe.yaml").is_file()


# User mistakes that once ended in a traceback.
TINY_MODEL = ["encoder.params.embed_dim=32", "encoder.params.depth=1",
              "encoder.params.num_heads=2", "predictor.params.embed_dim=16",
              "predictor.params.depth=1", "predictor.params.num_heads=2"]


@pytest.mark.parametrize("override", ["encoder.params.num_heads=-3",
                                      "encoder.params.embed_dim=-12",
                                      "encoder.params.mlp_ratio=-1"])
def test_bad_vit_params_exit_2(override, capsys):
    assert main(["run", TINY, override, "--dry-run"]) == 2
    _one_line_error(capsys.readouterr().err)


def test_batch_larger_than_dataset_exits_2(capsys, tmp_path):
    code = main(["run", "--run-dir", str(tmp_path / "run"), TINY, *TINY_MODEL,
                 "data.params.num_samples=4", "train.batch_size=8", "train.steps=1",
                 "logging.progress=false", "monitors.probe_samples=0", "train.device=cpu"])
    assert code == 2
    _one_line_error(capsys.readouterr().err)
