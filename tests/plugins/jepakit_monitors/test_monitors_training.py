"""A real (tiny) training run with the monitors plugin: metrics, aim run, loss.png, k-NN."""

from __future__ import annotations

import json
import logging

import pytest
from jepakit_monitors.aim_run import RUN_FILE, read_run
from monitorkit import TINY, TINY_MODEL
from PIL import Image

import jepakit
from jepakit.errors import ConfigError
from jepakit.registry import Registry

TRAIN = [*TINY_MODEL, "train.steps=6", "train.batch_size=8", "data.params.num_samples=64",
         "logging.every_steps=2", "logging.progress=false", "monitors.probe_samples=0", "monitors.every_steps=2",
         "monitors.mask_images_every_steps=4", "checkpoint.enabled=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitors")
    run_dir = root / "run"
    trainer = jepakit.build(TINY, [*TRAIN, f"monitors.aim_repo={root / 'aimrepo'}"],
                            run_dir=run_dir, registry=Registry())
    summary = trainer.fit()
    assert "WARNING" not in (run_dir / "run.log").read_text()
    return run_dir, root / "aimrepo", summary


def test_monitors_are_logged_every_n_steps(trained):
    run_dir, _, _ = trained
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for r in records:
        assert {"rankme", "target_std", "pred_std", "pred_target_cos", "content_share"} <= set(r)
        assert 1.0 <= r["rankme"] <= 32


def test_aim_run_is_written_and_reads_back(trained):
    run_dir, repo, _ = trained
    record = json.loads((run_dir / RUN_FILE).read_text())
    assert record["repo"] == str(repo) and (repo / ".aim").is_dir()
    run = read_run(repo, record["hash"])
    assert run["name"] == "run"
    assert [s for s, _ in run["metrics"]["loss"]] == [2, 4, 6]
    expected = [json.loads(line)["loss"] for line in
                (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [v for _, v in run["metrics"]["loss"]] == pytest.approx(expected)
    assert "rankme" in run["metrics"] and "lr" in run["metrics"]
    assert run["params"]["hparams"]["encoder"]["params"]["embed_dim"] == 32
    assert run["params"]["system"]["world_size"] == 1


def test_loss_png_is_written(trained):
    run_dir, _, _ = trained
    image = Image.open(run_dir / "loss.png")
    assert image.format == "PNG" and image.width == 720


def test_aim_off_and_knn_monitor(tmp_path, caplog):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jepakit" / "eval"))
    from evalkit import class_folder

    class_folder(tmp_path / "knn" / "train", 6, seed=0)
    class_folder(tmp_path / "knn" / "test", 3, seed=1)
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="jepakit"):
        jepakit.build(TINY, [*TRAIN, "monitors.aim=false", "monitors.knn_every_steps=3",
                             f"monitors.knn_data={tmp_path / 'knn'}", "monitors.loss_curve=false"],
                      run_dir=run_dir, registry=Registry()).fit()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [("knn_top1" in r) for r in records] == [False, True, True]  # steps 4 and 6 cross 3, 6
    assert 0.0 <= records[-1]["knn_top1"] <= 1.0
    assert not (run_dir / RUN_FILE).exists() and not (run_dir / "loss.png").exists()


def test_knn_monitor_without_data_is_a_config_error(tmp_path):
    trainer = jepakit.build(TINY, [*TRAIN, "monitors.aim=false", "monitors.knn_every_steps=2"],
                            run_dir=tmp_path, registry=Registry())
    with pytest.raises(ConfigError, match="knn_data"):
        trainer.fit()
