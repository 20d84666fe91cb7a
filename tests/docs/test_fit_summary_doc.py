"""docs/python-api.md lists exactly the keys `Trainer.fit()` returns."""

from __future__ import annotations

import re
from pathlib import Path

import jepakit

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
COUNTING_DATA = {"samples_read", "bad_samples", "bad_fraction"}
"""Keys only datasets that count unreadable samples add (not the synthetic one)."""


def documented_keys() -> set[str]:
    text = DOC.read_text()
    table = text[text.index("`fit()` returns a dict with these keys"):]
    table = table[:table.index("\n\n", table.index("| key |"))]
    keys: set[str] = set()
    for row in table.splitlines()[2:]:
        if row.startswith("| `"):
            keys |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return keys


def test_the_table_lists_every_key_fit_returns(tiny_recipe, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    summary = jepakit.build(str(tiny_recipe), [
        "train.steps=2", "train.batch_size=8", "encoder.params.depth=1",
        "predictor.params.depth=1", "logging.progress=false", "monitors.probe_samples=40",
    ], write_files=False).fit()
    documented = documented_keys()
    assert "probe_accuracy" in summary  # the probe ran: its keys are checked too
    assert set(summary) - documented == set(), "fit() returns keys the doc does not list"
    assert documented - set(summary) == COUNTING_DATA, "the doc lists keys fit() does not return"
