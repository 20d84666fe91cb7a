"""Bad-data accounting: every skipped sample is counted and named, never lost silently.

Datasets run in DataLoader workers, far from the trainer. They record each
good and bad sample in a per-process :data:`tally`; the collate function, which
runs in the same process, drains it into the batch it builds
(:class:`DataStats` on ``Batch.data_stats``), so the counts travel to the
trainer with the data and need no extra channel. Anything recorded after a
worker's last full batch of an epoch rides on its first batch of the next one.

In the trainer, :class:`DataHealth` adds the counts up, writes the shard and
key of each bad sample to the run's log, puts the totals in ``metrics.jsonl``
and the summary, and stops the run once the bad fraction passes the dataset's
``max_bad_fraction``.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from jepakit.errors import JepakitError

log = logging.getLogger("jepakit")

DEFAULT_MAX_BAD_FRACTION = 0.01
DEFAULT_BAD_CHECK_AFTER = 1000
MAX_EVENTS_PER_BATCH = 100
"""Bad samples named per batch; the rest are counted (a whole bad shard can be thousands)."""


@attrs.define
class BadSample:
    """One skipped sample (or, for a broken shard, ``count`` samples lost at once)."""

    source: str
    """The shard URL or file path."""
    key: str
    reason: str
    count: int = 1


@attrs.define
class DataStats:
    """Counts since the previous batch from the same process."""

    good: int = 0
    bad: int = 0
    events: list[BadSample] = attrs.field(factory=list)
    dropped_events: int = 0
    """Bad samples counted in ``bad`` but not listed in ``events`` (per-batch cap)."""


class Tally:
    """Per-process accumulator that datasets write to and the collate function drains."""

    def __init__(self) -> None:
        self._stats = DataStats()
        self.active = False

    def good(self, n: int = 1) -> None:
        self.active = True
        self._stats.good += n

    def bad(self, source: str, key: str, reason: str, count: int = 1) -> None:
        self.active = True
        self._stats.bad += count
        if len(self._stats.events) < MAX_EVENTS_PER_BATCH:
            self._stats.events.append(BadSample(source, key, reason, count))
        else:
            self._stats.dropped_events += count

    def drain(self) -> DataStats | None:
        """The counts since the last drain (None if this process never counted anything)."""
        if not self.active:
            return None
        stats, self._stats = self._stats, DataStats()
        return stats


tally = Tally()
"""This process's tally (each DataLoader worker is its own process)."""


class DataHealth:
    """The trainer's running totals of good and bad samples, and the stop rule."""

    def __init__(self, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
                 check_after: int = DEFAULT_BAD_CHECK_AFTER) -> None:
        self.max_bad_fraction = max_bad_fraction
        self.check_after = check_after
        self.good = 0
        self.bad = 0
        self.active = False

    @classmethod
    def for_dataset(cls, dataset: Any) -> DataHealth:
        """Read the dataset's optional ``max_bad_fraction`` and ``bad_check_after`` attributes."""
        return cls(float(getattr(dataset, "max_bad_fraction", DEFAULT_MAX_BAD_FRACTION)),
                   int(getattr(dataset, "bad_check_after", DEFAULT_BAD_CHECK_AFTER)))

    @property
    def read(self) -> int:
        return self.good + self.bad

    @property
    def fraction(self) -> float:
        return self.bad / self.read if self.read else 0.0

    def update(self, stats: DataStats | None) -> None:
        """Add one batch's counts, log its bad samples, and stop the run if too many are bad."""
        if stats is None:
            return
        self.active = True
        if stats.bad and not self.bad:
            log.warning("skipping bad samples; the shard and key of each go to the run's log")
        self.good += stats.good
        self.bad += stats.bad
        for e in stats.events:
            lost = f" ({e.count} samples lost)" if e.count != 1 else ""
            log.info("bad sample skipped: source %s key %s%s: %s", e.source, e.key, lost, e.reason)
        if stats.dropped_events:
            log.info("%d more bad samples in this batch (not listed)", stats.dropped_events)
        self.check()

    def check(self) -> None:
        if self.read >= self.check_after and self.fraction > self.max_bad_fraction:
            raise JepakitError(
                f"stopping: {self.bad} of {self.read} samples read were bad ({self.fraction:.1%}, "
                f"more than max_bad_fraction {self.max_bad_fraction:.1%}); the shard and key of "
                "each are in the run's log (run.log). Repair or remove those shards, or raise "
                "data.params.max_bad_fraction"
            )

    def metrics(self) -> dict[str, float]:
        """Running totals for ``metrics.jsonl`` (empty for datasets that do not count)."""
        if not self.active:
            return {}
        return {"samples_read": self.read, "bad_samples": self.bad, "bad_fraction": self.fraction}

    def summary(self) -> dict[str, Any]:
        return self.metrics()

    def state_dict(self) -> dict[str, Any]:
        return {"good": self.good, "bad": self.bad, "active": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.good = int(state.get("good", 0))
        self.bad = int(state.get("bad", 0))
        self.active = bool(state.get("active", False))

    def report(self) -> None:
        """One end-of-run line when anything was skipped."""
        if self.bad:
            log.warning("skipped %d bad sample(s) of %d read (%.2f%%); each is listed in the "
                        "run's log (run.log)", self.bad, self.read, 100 * self.fraction)
