"""Streaming image datasets: units (tar shards or files) split over ranks and workers.

One :class:`StreamingDataset` serves every streamed source; a subclass only
says how to read one unit into raw samples (dicts of bytes keyed by
extension, WebDataset style). Two ways to cover the data:

* ``exact``: every epoch, the units are shuffled with a seed shared by all
  processes and dealt out ``rank::world`` then ``worker::workers``; each sample
  is read once per epoch. Needs at least ranks x workers units (checked before
  any worker starts, instead of leaving a process with nothing to do).
* ``resampled``: every worker draws units with replacement, so no rank can run
  dry whatever the shard count; an epoch is ``epoch_samples`` per rank (like
  WebDataset's ``with_epoch``).

Raw samples pass through a shuffle buffer (bytes, not decoded pixels), then are
decoded and augmented. Undecodable samples and damaged units are skipped and
recorded in :data:`jepakit.data.badsamples.tally`. The position in the stream
(epoch, samples consumed) is a ``state_dict``, which torchdata's
StatefulDataLoader saves per worker, so a checkpoint can resume mid-epoch.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import attrs
from attrs import validators as v
from torch.utils.data import IterableDataset, get_worker_info

from jepakit.data.badsamples import (
    DEFAULT_BAD_CHECK_AFTER,
    DEFAULT_MAX_BAD_FRACTION,
    tally,
)
from jepakit.errors import JepakitError

RawSample = dict[str, Any]
"""``{"__key__": str, "__url__": str, "<ext>": bytes, ...}``; a ``"__bad__"`` entry
(reason) with ``"__count__"`` marks samples a reader could not deliver. Before decoding,
``"__slot__"`` (epoch, rank, worker, position) says where the sample sits in the run, so
a decoder can key its randomness on it and a resumed run augments exactly as before."""

Mode = Literal["auto", "exact", "resampled"]


def rank_and_world() -> tuple[int, int]:
    """torch.distributed's rank and world size if initialised, else torchrun's env, else 0/1."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def worker_and_count() -> tuple[int, int]:
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class SampleError(Exception):
    """Raised by a decode function for a sample that cannot be used (counted, then skipped).

    Any other exception from decoding is a bug and stops the run."""


def bad_marker(source: str, key: str, reason: str, count: int = 1) -> RawSample:
    return {"__key__": key, "__url__": source, "__bad__": reason, "__count__": count}


@attrs.define
class StreamOptions:
    """How a streamed dataset covers its data; shared by the webdataset and imagefolder plugins."""

    mode: Mode = "auto"
    """exact: each sample once per epoch; resampled: units drawn with replacement, no rank
    can starve; auto: exact on one process, resampled when there are several ranks."""
    shuffle_buffer: int = attrs.field(default=1000, validator=v.ge(0))
    """Raw samples held for shuffling (0: off). Holds encoded bytes, not pixels."""
    shard_shuffle: bool = True
    """Shuffle the unit order each epoch (exact mode)."""
    epoch_samples: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Resampled mode: samples per rank per epoch (default: the index's total / ranks)."""
    max_bad_fraction: float = attrs.field(default=DEFAULT_MAX_BAD_FRACTION,
                                          validator=[v.ge(0), v.le(1)])
    """Stop the run when more than this fraction of samples read is bad."""
    bad_check_after: int = attrs.field(default=DEFAULT_BAD_CHECK_AFTER, validator=v.ge(1))
    """Samples to read before the bad fraction is enforced (one early bad sample is not 100%)."""


def shuffled(items: Iterable[RawSample], size: int, rng: random.Random) -> Iterator[RawSample]:
    """A reservoir shuffle over a buffer of ``size`` items (identity when size < 2)."""
    if size < 2:
        yield from items
        return
    buffer: list[RawSample] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = rng.randrange(size)
        buffer[i], item = item, buffer[i]
        yield item
    rng.shuffle(buffer)
    yield from buffer


class StreamingDataset(IterableDataset):
    """Yields ``decode(raw)`` for each good raw sample of this rank's and worker's units."""

    def __init__(self, units: list[str], decode: Callable[[RawSample], Any],
                 options: StreamOptions, seed: int = 0,
                 expected: dict[str, int] | None = None) -> None:
        if not units:
            raise JepakitError("the dataset has no shards or files to read")
        self.units = units
        self.decode = decode
        self.options = options
        self.seed = seed
        self.expected = expected or {}
        self.max_bad_fraction = options.max_bad_fraction
        self.bad_check_after = options.bad_check_after
        self._epoch = 0
        self._position = 0
        self._failures: Counter[str] = Counter()
        self._failed_units: dict[str, str] = {}

    # -- what a subclass provides -------------------------------------------------
    def read_unit(self, unit: str) -> Iterator[RawSample]:
        """Raw samples of one unit; damage is reported with :func:`bad_marker`, not raised."""
        raise NotImplementedError

    def _read(self, unit: str) -> Iterator[RawSample]:
        """``read_unit``, with the reason of each bad marker recorded for :meth:`_no_data`."""
        for raw in self.read_unit(unit):
            if "__bad__" in raw:
                self._record(unit, str(raw["__bad__"]), int(raw.get("__count__", 1)))
            yield raw

    def _record(self, unit: str, reason: str, count: int = 1) -> None:
        """Count ``reason`` with numbers and the unit's name taken out, so one kind of
        damage in many places is one entry."""
        kind = re.sub(r"\d+", "N", reason.replace(unit, "<shard>")).split(" (no index")[0]
        self._failures[kind[:120]] += max(count, 1)
        self._failed_units.setdefault(unit, reason)

    def _no_data(self, read: int) -> str:
        """Why nothing could be read: the units and the count of each reason."""
        units = list(self._failed_units)
        more = f" and {len(units) - 3} more" if len(units) > 3 else ""
        counts = "; ".join(f"{n} x {why}" for why, n in self._failures.most_common(5))
        return (f"no sample could be read from {len(units)} of {read} shard(s) or file(s) "
                f"this process was given ({', '.join(units[:3])}{more}). Reasons: {counts}")

    # -- coverage -------------------------------------------------------------------
    def mode(self, world: int | None = None) -> str:
        if self.options.mode != "auto":
            return self.options.mode
        return "resampled" if (world or rank_and_world()[1]) > 1 else "exact"

    def check_workers(self, num_workers: int) -> None:
        """Fail fast (in the main process) when exact mode would leave a worker without units."""
        _, world = rank_and_world()
        self._check_split(world, max(1, num_workers))

    def _check_split(self, world: int, workers: int) -> None:
        if self.mode(world) == "exact" and len(self.units) < world * workers:
            raise JepakitError(
                f"exact epochs need a shard (or file) for every rank and worker: "
                f"{len(self.units)} < {world} rank(s) x {workers} worker(s). Write more, smaller "
                "shards (jepakit shards make --shard-size N), lower train.num_workers, or set "
                "data.params.mode=resampled"
            )

    def samples_per_epoch(self, world: int) -> int | None:
        """Resampled mode: samples per rank per epoch, if known."""
        if self.options.epoch_samples is not None:
            return self.options.epoch_samples
        if self.expected and len(self.expected) >= len(self.units):
            return max(1, sum(self.expected.get(u, 0) for u in self.units) // world)
        return None

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("-".join(str(p) for p in (self.seed, *parts)))

    def _exact(self, epoch: int, rank: int, world: int, worker: int, workers: int
               ) -> Iterator[RawSample]:
        order = list(range(len(self.units)))
        if self.options.shard_shuffle:
            self._rng("units", epoch).shuffle(order)  # same order on every rank and worker
        for index in order[rank::world][worker::workers]:
            yield from self._read(self.units[index])

    def _resampled(self, epoch: int, rank: int, worker: int) -> Iterator[RawSample]:
        rng = self._rng("draw", epoch, rank, worker)
        empty_draws = 0
        while True:
            delivered = False
            for raw in self._read(self.units[rng.randrange(len(self.units))]):
                delivered = delivered or "__bad__" not in raw
                yield raw
            empty_draws = 0 if delivered else empty_draws + 1
            if empty_draws >= max(20, 2 * len(self.units)):
                raise JepakitError(f"{empty_draws} shards in a row held no readable sample: "
                                   f"{self._no_data(len(self.units))}")

    def raw_stream(self, epoch: int) -> Iterator[RawSample]:
        """This rank's and worker's raw samples for ``epoch``, after the shuffle buffer."""
        rank, world = rank_and_world()
        worker, workers = worker_and_count()
        self._check_split(world, workers)
        rng = self._rng("samples", epoch, rank, worker)
        if self.mode(world) == "exact":
            return shuffled(self._exact(epoch, rank, world, worker, workers),
                            self.options.shuffle_buffer, rng)
        stream = shuffled(self._resampled(epoch, rank, worker), self.options.shuffle_buffer, rng)
        per_rank = self.samples_per_epoch(world)
        if per_rank is None:
            return stream
        per_worker = math.ceil(per_rank / workers)
        return (raw for _, raw in zip(range(per_worker), stream))

    # -- iteration and state --------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        epoch, start = self._epoch, self._position
        rank, worker = rank_and_world()[0], worker_and_count()[0]
        good = bad = 0
        self._failures.clear()
        self._failed_units.clear()
        for i, raw in enumerate(self.raw_stream(epoch)):
            self._position = i + 1
            if i < start:  # resuming: skip what was consumed before the checkpoint, undecoded
                continue
            if "__bad__" in raw:
                count = int(raw.get("__count__", 1))
                if count:
                    bad += count
                    tally.bad(raw["__url__"], raw["__key__"], raw["__bad__"], count)
                continue
            raw["__slot__"] = (epoch, rank, worker, i)  # where it sits: keys random views
            try:
                sample = self.decode(raw)
            except SampleError as exc:
                bad += 1
                tally.bad(raw.get("__url__", "?"), raw.get("__key__", "?"), str(exc))
                self._record(str(raw.get("__url__", "?")), str(exc))
                if not good and bad >= self.bad_check_after:
                    raise JepakitError(f"none of the first {bad} samples could be decoded "
                                       f"(last: {exc}); is this image data?") from None
                continue
            good += 1
            tally.good()
            yield sample
        self._epoch, self._position = epoch + 1, 0
        if not good and bad and start == 0:
            rank, world = rank_and_world()
            worker, workers = worker_and_count()
            mine = (len(self.units[rank::world][worker::workers]) if self.mode(world) == "exact"
                    else len(self.units))
            raise JepakitError(self._no_data(mine))

    def state_dict(self) -> dict[str, int]:
        """Where this worker is: its epoch and the raw samples consumed in it."""
        return {"epoch": self._epoch, "position": self._position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch = int(state["epoch"])
        self._position = int(state["position"])
