"""Checkpoints that survive crashes: exact resume, fallback past a torn file, NaN stops,
preemption (SIGTERM) and a killed process (SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import torch
from jepakit_ijepa.losses import RegressionLossConfig, SmoothL1Loss

import jepakit
from jepakit import checkpoint
from jepakit.errors import JepakitError
from jepakit.registry import Registry

TINY_MODEL = [
    "encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
    "predictor.params.embed_dim=16", "predictor.params.depth=1", "predictor.params.num_heads=2",
    "train.batch_size=8", "data.params.num_samples=40", "logging.every_steps=1",
    "logging.progress=false", "monitors.probe_samples=0", "train.device=cpu",
]


def run_cli(repo_root: Path, run_dir: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.update(popen.pop("env", {}))
    cmd = [sys.executable, "-m", "jepakit.cli", "run", str(repo_root / "recipes/ijepa_tiny.yaml"),
           *TINY_MODEL, "--run-dir", str(run_dir), *args]
    proc = subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)
    return proc


def losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records}


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {path.name}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, 2])
def test_sigkill_then_resume_auto_reproduces_losses(repo_root, tmp_path, nproc):
    """A run killed by SIGKILL after a checkpoint and resumed with --resume auto logs
    the same per-step losses as an uninterrupted run (1 process, and 2-process DDP)."""
    steps = ["train.steps=10", "checkpoint.every_steps=4", "checkpoint.keep_last=5"]
    launch = ["--nproc-per-node", str(nproc)] if nproc > 1 else []
    whole = run_cli(repo_root, tmp_path / "whole", *steps, *launch)
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err

    killed = run_cli(repo_root, tmp_path / "killed", *steps, *launch)
    wait_for(tmp_path / "killed/checkpoints/step_00000004.pt", killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    resumed = run_cli(repo_root, tmp_path / "killed", *steps, *launch, "--resume", "auto")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    expected, got = losses(tmp_path / "whole"), losses(tmp_path / "killed")
    assert sorted(got) == sorted(expected) == list(range(1, 11))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step


def build(run_dir: Path, *overrides: str, registry: Registry | None = None, **kw):
    return jepakit.build("recipes/ijepa_tiny.yaml", [*TINY_MODEL, *overrides], run_dir=run_dir,
                         registry=registry or Registry(), **kw)


def test_torn_checkpoint_falls_back_to_the_previous_one(repo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo_root)
    trainer = build(tmp_path, "train.steps=4", "checkpoint.every_steps=2")
    trainer.fit()
    newest = tmp_path / "checkpoints/step_00000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # torn write
    resumed = build(tmp_path, "train.steps=6", "checkpoint.every_steps=2", resume="auto")
    assert resumed.step == 2
    assert "skipping checkpoint step_00000004.pt" in capsys.readouterr().err
    assert "skipping checkpoint step_00000004.pt" in (tmp_path / "run.log").read_text()


def test_resume_from_a_path_restores_everything(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    trainer = build(tmp_path / "a", "train.steps=3", "checkpoint.every_steps=0")
    trainer.fit()
    path = checkpoint.list_checkpoints(tmp_path / "a/checkpoints")[-1][1]
    other = build(tmp_path / "b", "train.steps=3", "train.seed=99", resume=str(path))
    assert other.step == 3
    for a, b in zip(trainer.model.target_encoder.parameters(),
                    other.model.target_encoder.parameters(), strict=True):
        assert torch.equal(a, b)
    assert other.optimizer.state_dict()["state"].keys() == trainer.optimizer.state_dict()["state"].keys()


def test_missing_resume_file_is_a_clear_error(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    with pytest.raises(JepakitError, match="checkpoint not found"):
        build(tmp_path, "train.steps=2", resume=str(tmp_path / "nope.pt"))


class NaNAfter(SmoothL1Loss):
    """Smooth L1 until ``after`` calls, then NaN (``only_once``: a single bad step)."""

    def __init__(self, config: NaNConfig) -> None:
        super().__init__(RegressionLossConfig())
        self.after, self.only_once, self.calls = config.after, config.only_once, 0

    def __call__(self, predictions, targets):
        self.calls += 1
        loss = super().__call__(predictions, targets)
        bad = self.calls == self.after + 1 if self.only_once else self.calls > self.after
        return loss * float("nan") if bad else loss


@attrs.define
class NaNConfig:
    after: int = 3
    only_once: bool = False


class NaNPlugin:
    @jepakit.hookimpl
    def jepakit_losses(self):
        return [jepakit.Component("nan_after", NaNAfter, NaNConfig)]


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    trainer = build(tmp_path, "train.steps=10", "checkpoint.every_steps=2", "loss.name=nan_after",
                    "loss.params.after=5", registry=Registry(plugins=[NaNPlugin()]))
    with pytest.raises(JepakitError, match="NaN or infinite.*step_00000004.pt"):
        trainer.fit()
    kept = [step for step, _ in checkpoint.list_checkpoints(tmp_path / "checkpoints")]
    assert kept == [2, 4]
    state = checkpoint.load(tmp_path / "checkpoints/step_00000004.pt")
    assert all(torch.isfinite(t).all() for t in state["encoder"].values())


def test_skip_nonfinite_steps_survives_a_single_bad_step(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    trainer = build(tmp_path, "train.steps=6", "loss.name=nan_after", "loss.params.after=2",
                    "loss.params.only_once=true", "train.skip_nonfinite_steps=1",
                    registry=Registry(plugins=[NaNPlugin()]))
    summary = trainer.fit()
    assert summary["steps"] == 6 and summary["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.encoder.parameters())


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(repo_root, tmp_path):
    proc = run_cli(repo_root, tmp_path, "train.steps=100000", "checkpoint.every_steps=0")
    wait_for(tmp_path / "metrics.jsonl", proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Preempted (SIGTERM)" in out
    saved = checkpoint.list_checkpoints(tmp_path / "checkpoints")
    assert len(saved) == 1 and 0 < saved[0][0] < 100000
    assert checkpoint.load(saved[0][1])["step"] == saved[0][0]
