"""loss.png axis labels: every tick reads its own value (RankMe ticks once all read "14.2")."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from jepakit_monitors import curves
from jepakit_monitors.curves import _ticks, draw_curves, tick_labels


def test_rankme_ticks_are_distinct():
    ticks = _ticks(14.17, 14.235)
    assert tick_labels(ticks) == ["14.18", "14.20", "14.22"]
    assert tick_labels(_ticks(-0.3, 0.2)) == ["-0.2", "-0.1", "0", "0.1", "0.2"]
    assert tick_labels(_ticks(1e-5, 3e-5)) == ["1.5e-05", "2.0e-05", "2.5e-05", "3.0e-05"]


@settings(max_examples=300, deadline=None)
@given(lo=st.floats(-1e6, 1e6), span=st.floats(1e-6, 1e6))
def test_every_label_reads_its_own_tick(lo, span):
    hi = lo + span
    if hi - lo < 1e-9 * max(1.0, abs(lo)):  # below float resolution: no axis to label
        return
    ticks = _ticks(lo, hi)
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels), (lo, hi, labels)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for tick, label in zip(ticks, labels):
        assert math.isclose(float(label), tick, abs_tol=step / 2 + 1e-12), (tick, label)


def test_the_panels_use_them(monkeypatch):
    seen = []
    real = curves.tick_labels

    def spy(ticks):
        seen.append(real(ticks))
        return seen[-1]

    monkeypatch.setattr(curves, "tick_labels", spy)
    records = [{"step": s, "loss": 1.0 / s, "rankme": 14.18 + 0.001 * s} for s in range(1, 50)]
    assert draw_curves(records) is not None
    rankme = seen[1]
    assert len(set(rankme)) == len(rankme) > 1, rankme
