"""Bad-sample accounting: the per-process tally and the trainer's stop rule."""

from __future__ import annotations

import pytest

from jepakit.data.badsamples import DataHealth, DataStats, Tally
from jepakit.errors import JepakitError


def test_tally_drains_deltas_and_is_silent_when_unused():
    t = Tally()
    assert t.drain() is None
    t.good(3)
    t.bad("s.tar", "k1", "broken", count=2)
    stats = t.drain()
    assert stats is not None and (stats.good, stats.bad) == (3, 2)
    assert stats.events[0].key == "k1"
    assert t.drain() == DataStats()


def test_health_logs_counts_and_stops_past_the_threshold(caplog):
    health = DataHealth(max_bad_fraction=0.1, check_after=20)
    assert health.metrics() == {}
    health.update(DataStats(good=9, bad=1, events=[]))
    with caplog.at_level("INFO", logger="jepakit"):
        health.update(DataStats(good=5, bad=2, events=[]))  # 3/17: too early to judge
    assert health.metrics() == {"samples_read": 17, "bad_samples": 3, "bad_fraction": 3 / 17}
    with pytest.raises(JepakitError, match=r"5 of 22 samples read were bad .* max_bad_fraction"):
        health.update(DataStats(good=3, bad=2))


def test_health_reads_the_dataset_settings():
    class Data:
        max_bad_fraction = 0.5
        bad_check_after = 7

    health = DataHealth.for_dataset(Data())
    assert (health.max_bad_fraction, health.check_after) == (0.5, 7)
    assert DataHealth.for_dataset(object()).max_bad_fraction == 0.01
