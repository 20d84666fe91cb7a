"""The engine checks the masks a run draws against the masker contract (jepakit/maskcheck.py)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

import jepakit
from jepakit import registry as registry_module
from jepakit.cli import main
from jepakit.errors import ConfigError
from jepakit.maskcheck import CheckedMaskStream, check_draw

TINY = str(Path(__file__).resolve().parents[2] / "recipes" / "ijepa_tiny.yaml")
SMALL = ["encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
         "predictor.params.embed_dim=16", "predictor.params.depth=1",
         "predictor.params.num_heads=2", "train.steps=2", "train.batch_size=8",
         "logging.progress=false", "monitors.probe_samples=0", "train.device=cpu"]


@attrs.define
class LeakyConfig:
    overlap: int = 3
    """How many target patches the context also holds."""


class Leaky:
    """Context = the first half of the grid plus ``overlap`` target patches: a leak."""

    def __init__(self, config: LeakyConfig) -> None:
        self.config = config

    def __call__(self, batch_size: int, grid: tuple[int, int], generator: torch.Generator):
        n = grid[0] * grid[1]
        context = torch.arange(n // 2 + self.config.overlap)
        target = torch.arange(n // 2, n)
        return jepakit.Masks(context=[context.repeat(batch_size, 1)],
                             targets=[target.repeat(batch_size, 1)])


class Declared(Leaky):
    """The same masks, overlap declared: allowed."""

    conformance = {"disjoint": False}


class Plugin:
    def __init__(self) -> None:
        self.started = 0

    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [jepakit.Component("leaky", Leaky, LeakyConfig),
                jepakit.Component("declared_leaky", Declared, LeakyConfig),
                jepakit.Component("late", lambda config: BreaksLater(good=2), LeakyConfig)]

    @jepakit.hookimpl
    def jepakit_on_train_start(self, trainer):
        self.started += 1


@pytest.fixture()
def plugin(monkeypatch):
    """The leaky maskers in the registry the CLI uses."""
    p = Plugin()
    monkeypatch.setattr(registry_module, "_default", jepakit.Registry(plugins=[p]))
    return p


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_leaky_masker_stops_run_before_step_1(plugin, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", TINY, *SMALL, "masker.name=leaky", "--run-dir", str(run_dir)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "masker 'leaky' (step 1" in line
    assert "context[0] and the targets overlap in image 0 at patch 32" in line
    assert "allow_overlap" in line
    assert plugin.started == 0  # training never began
    assert not run_dir.exists()  # checked before anything was written


def test_a_declared_overlap_trains(plugin, tmp_path, capsys):
    assert main(["run", TINY, *SMALL, "masker.name=declared_leaky",
                 "--run-dir", str(tmp_path / "run")]) == 0
    assert plugin.started == 1


@pytest.mark.parametrize("command", [["run", TINY, "--dry-run"],
                                     ["masks", "stats", TINY, "--batches", "2"]])
def test_dry_run_and_mask_stats_check_too(plugin, command, capsys):
    assert main([*command, "masker.name=leaky"]) == 2
    assert "overlap in image 0 at patch 32" in _one_line(capsys.readouterr().err)


def _masks(context, target):
    return jepakit.Masks(context=[torch.tensor(context)], targets=[torch.tensor(target)])


class Fixed:
    def __init__(self, masks):
        self.masks = masks

    def __call__(self, batch_size, grid, generator):
        return self.masks


@pytest.mark.parametrize(("masks", "message"), [
    (_masks([[0, 1, 99]], [[5, 6]]), "context[0] holds index 99 in image 0, out of range [0, 16)"),
    (_masks([[0, 1, 1]], [[5, 6]]), "context[0] repeats patch 1 in image 0"),
    (_masks([[0, 1]], [[5, 6]]).__class__(context=[torch.tensor([[0, 1]], dtype=torch.int32)],
                                          targets=[torch.tensor([[5, 6]])]), "dtype torch.int32"),
    (_masks([[0, 1], [2, 3]], [[5, 6], [7, 8]]), "expected [1, K]"),
])
def test_each_rule_has_its_message(masks, message):
    with pytest.raises(ConfigError, match="masker 'fixed'") as info:
        check_draw(Fixed(masks), (4, 4), 1, 0, "fixed")
    assert message in str(info.value)


class BreaksLater:
    """Good masks for ``good`` calls, then a leak: only a sampled check can see it."""

    def __init__(self, good: int) -> None:
        self.good, self.calls = good, 0

    def __call__(self, batch_size, grid, generator):
        self.calls += 1
        leak = 1 if self.calls > self.good else 0
        return Leaky(LeakyConfig(overlap=leak))(batch_size, grid, generator)


def test_later_batches_are_sampled():
    stream = CheckedMaskStream(BreaksLater(good=2), (4, 4), seed=0, name="late", every=4)
    stream.check_start(2)           # call 1: fine
    stream(2, 0)                    # call 2: fine (step 0 checked again)
    for step in (1, 2, 3):          # calls 3-5 leak but are not sampled
        stream(2, step)
    with pytest.raises(ConfigError, match=r"masker 'late' \(step 5, rank 0, grid 4x4, batch 2\)"):
        stream(2, 4)


def test_the_first_draw_is_checked_without_check_start():
    """A loop of one's own (train_step) never calls check_start."""
    stream = CheckedMaskStream(Leaky(LeakyConfig()), (4, 4), seed=0, name="leaky", every=1000)
    with pytest.raises(ConfigError, match="step 8"):
        stream(2, 7)


def test_mask_stats_checks_every_batch_it_draws(plugin, capsys):
    """A masker that breaks on its third draw: stats' first batch is fine, the third is not."""
    assert main(["masks", "stats", TINY, "masker.name=late", "--batches", "5"]) == 2
    assert "masker 'late' (draw 3, grid 8x8, batch 32)" in _one_line(capsys.readouterr().err)


class LeakyVideo:
    """On a (frames, rows, columns) grid: context = the first half plus one target patch."""

    conformance = {"grid_ranks": (2, 3)}

    def __call__(self, batch_size, grid, generator):
        n = grid[0] * grid[1] * grid[2]
        return jepakit.Masks(context=[torch.arange(n // 2 + 1).repeat(batch_size, 1)],
                             targets=[torch.arange(n // 2, n).repeat(batch_size, 1)])


def test_video_grids_are_checked_too():
    with pytest.raises(ConfigError, match=r"masker 'clip' \(seed 0, grid 2x4x4, batch 2\): "
                                          r"context\[0\] and the targets overlap in clip 0"):
        check_draw(LeakyVideo(), (2, 4, 4), 2, 0, "clip")


def test_out_of_range_names_the_image_that_holds_it():
    masks = _masks([[0, 1, 2], [3, 4, 16]], [[5, 6], [7, 8]])
    with pytest.raises(ConfigError, match=r"context\[0\] holds index 16 in image 1, out of range"):
        check_draw(Fixed(masks), (4, 4), 2, 0, "fixed")
