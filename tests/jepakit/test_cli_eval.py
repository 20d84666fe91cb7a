"""``jepakit eval`` on the command line: results, JSON, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import jepakit
from jepakit.cli import main
from jepakit.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parent / "eval"))
from evalkit import TINY, TINY_ENCODER, flat_folder, train_test_folders  # noqa: E402

TRAIN = [*TINY_ENCODER, "train.steps=4", "train.batch_size=8", "data.params.num_samples=64",
         "logging.every_steps=2", "logging.progress=false", "monitors.probe_samples=0", "monitors.aim=false",
         "train.device=cpu"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli_eval") / "run"
    jepakit.build(TINY, TRAIN, run_dir=run, registry=Registry()).fit()
    return run


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return train_test_folders(tmp_path_factory.mktemp("cli_eval_data"), 10, 5)


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jepakit: error:"), err
    return lines[0]


def test_eval_linear_on_a_run_prints_accuracy_and_writes_json(run_dir, labelled, capsys):
    assert main(["eval", "linear", "--run", str(run_dir), "--data", str(labelled),
                 "--layers", "last4", "--max-iter", "20"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("linear probe: top-1 ") and "step 4" in out
    result = json.loads((run_dir / "eval" / "linear-last4.json").read_text())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["test_samples"] == 10
    assert result["step"] == 4 and result["feature_dim"] == 128
    assert list((run_dir / "eval" / "cache").glob("*/header.json"))  # cached for next time


def test_eval_knn_on_a_checkpoint_and_low_shot(run_dir, labelled, tmp_path, capsys):
    ckpt = next((run_dir / "checkpoints").glob("*.pt"))
    out_json = tmp_path / "knn.json"
    assert main(["eval", "knn", "--checkpoint", str(ckpt), "--data", str(labelled / "train"),
                 "--test-data", str(labelled / "test"), "--shots", "3", "--k", "3",
                 "--json", str(out_json)]) == 0
    assert capsys.readouterr().out.startswith("3-NN: top-1 ")
    result = json.loads(out_json.read_text())
    assert result["shots"] == 3 and result["train_samples"] == 6
    # more neighbours asked for than training images: the k used is reported
    assert main(["eval", "knn", "--checkpoint", str(ckpt), "--data", str(labelled / "train"),
                 "--test-data", str(labelled / "test"), "--shots", "3", "--k", "20",
                 "--json", str(out_json)]) == 0
    assert capsys.readouterr().out.startswith("6-NN: top-1 ")
    result = json.loads(out_json.read_text())
    assert result["k"] == 6 and result["k_requested"] == 20


def test_eval_pixels_baseline(labelled, capsys):
    assert main(["eval", "linear", "--pixels", "--data", str(labelled), "--max-iter", "20",
                 "--no-cache"]) == 0
    assert "raw pixels 1x16x16" in capsys.readouterr().out  # grey images seen as one channel


def test_missing_checkpoint_exits_2(tmp_path, labelled, capsys):
    code = main(["eval", "linear", "--checkpoint", str(tmp_path / "nope.pt"), "--data",
                 str(labelled)])
    assert code == 2
    assert "checkpoint not found" in one_line_error(capsys.readouterr().err)
    (tmp_path / "empty_run").mkdir()
    assert main(["eval", "knn", "--run", str(tmp_path / "empty_run"), "--data",
                 str(labelled)]) == 2
    assert "no checkpoint" in one_line_error(capsys.readouterr().err)


def test_unlabelled_data_exits_2(run_dir, tmp_path, capsys):
    flat = flat_folder(tmp_path / "flat")
    assert main(["eval", "linear", "--run", str(run_dir), "--data", str(flat)]) == 2
    assert "no labels" in one_line_error(capsys.readouterr().err)


def test_source_must_be_exactly_one(labelled, capsys):
    assert main(["eval", "linear", "--data", str(labelled)]) == 2
    assert "exactly one of" in one_line_error(capsys.readouterr().err)
    assert main(["eval", "linear", "--pixels", "--data", str(labelled), "--shots", "0"]) == 2
    one_line_error(capsys.readouterr().err)


def test_eval_attentive_on_a_run_with_controls(run_dir, labelled, capsys):
    assert main(["eval", "attentive", "--run", str(run_dir), "--data", str(labelled),
                 "--epochs", "2", "--lrs", "1e-3", "--wds", "0.01,0.1", "--controls",
                 "--num-workers", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("attentive probe: top-1 ") and "16 x 32-d tokens" in lines[0]
    assert "random init" in lines[1] and "raw pixels" in lines[2]  # the two controls
    assert lines[2].strip().startswith("control: attentive probe") and "16 x 48-d" in lines[2]
    result = json.loads((run_dir / "eval" / "attentive-tokens.json").read_text())
    assert set(result["val_accuracy_by_setting"]) == {"lr 0.001, wd 0.01", "lr 0.001, wd 0.1"}
    assert [c["layers"] for c in result["controls"]] == ["tokens", "pixel patches"]


def test_eval_linear_controls(run_dir, labelled, capsys):
    assert main(["eval", "knn", "--run", str(run_dir), "--data", str(labelled), "--k", "3",
                 "--controls", "--num-workers", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "random init" in lines[1] and "raw pixels 3x16x16" in lines[2]


def test_bad_attentive_options_are_one_line_errors(run_dir, labelled, capsys):
    assert main(["eval", "attentive", "--run", str(run_dir), "--data", str(labelled),
                 "--lrs", "fast"]) == 2
    assert "--lrs" in one_line_error(capsys.readouterr().err)
