"""The end-of-run linear probe (monitors.probe_samples): evidence that a run learned."""

from __future__ import annotations

import re

import pytest

import jepakit
from jepakit.cli import main

SMALL = ["encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
         "predictor.params.embed_dim=16", "predictor.params.depth=1",
         "predictor.params.num_heads=2", "train.batch_size=8", "train.steps=2",
         "logging.progress=false", "monitors.aim=false", "checkpoint.enabled=false",
         "train.device=cpu"]
LINE = re.compile(r"Linear probe on (\d+) held-out synthetic images: ([0-9.]+) "
                  r"\(random init ([0-9.]+)\)\.")


def test_a_short_run_reports_both_accuracies(tiny_recipe, tmp_path, capsys):
    assert main(["run", str(tiny_recipe), *SMALL, "monitors.probe_samples=60",
                 "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    found = LINE.search(out)
    assert found and found.group(1) == "60" and out.rstrip().endswith(found.group(0)), out
    assert 0 <= float(found.group(2)) <= 1 and 0 <= float(found.group(3)) <= 1
    assert "end-of-run linear probe on 60 held-out synthetic images" in \
        (tmp_path / "run" / "run.log").read_text()


def test_off_by_default_and_explains_when_there_is_no_held_out_data(tiny_recipe, capsys):
    trainer = jepakit.build(tiny_recipe, [*SMALL, "monitors.probe_samples=0"], write_files=False)
    assert "probe_accuracy" not in trainer.fit()

    from jepakit_data import synthetic

    class NoHeldOut(synthetic.SyntheticImages):
        held_out = None  # type: ignore[assignment]

    class Plugin:
        @jepakit.hookimpl
        def jepakit_datasets(self):
            return [jepakit.Component("plain", NoHeldOut, synthetic.SyntheticConfig)]

    trainer = jepakit.build(tiny_recipe, [*SMALL, "monitors.probe_samples=40", "data.name=plain"],
                            write_files=False, registry=jepakit.Registry(plugins=[Plugin()]))
    summary = trainer.fit()
    assert "probe_accuracy" not in summary
    assert "cannot make held-out images and monitors.knn_data is not set" in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_recipe_learns_what_random_init_cannot(tiny_recipe, tmp_path, capsys):
    """`make run` shortened (400 of 600 steps, 1000 probe images): the probe on the
    trained target encoder beats the same network at random init by 10 points or more,
    and no collapse warning fires on the way."""
    run_dir = tmp_path / "run"
    assert main(["run", str(tiny_recipe), "train.steps=400", "monitors.probe_samples=1000",
                 "logging.progress=false", "monitors.aim=false", "checkpoint.enabled=false",
                 "monitors.loss_curve=false", "train.device=cpu", "--run-dir", str(run_dir)]) == 0
    found = LINE.search(capsys.readouterr().out)
    assert found, "no probe line"
    trained, random_init = float(found.group(2)), float(found.group(3))
    assert trained - random_init >= 0.10, (trained, random_init)
    assert "collapsing" not in (run_dir / "run.log").read_text()
