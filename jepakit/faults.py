"""Surviving preemption and bad steps.

SIGTERM (a scheduler's preemption notice) only raises a flag; the loop saves a
checkpoint at the next step boundary and exits cleanly. Non-finite losses are
accumulated on the device, so detecting them costs no host sync per step.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import torch


class PreemptionFlag:
    """Context manager: while active, SIGTERM sets ``requested`` instead of killing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> PreemptionFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


class NonFiniteWatch:
    """Counts non-finite losses on the device; read (one sync) only when asked."""

    def __init__(self) -> None:
        self._count: torch.Tensor | None = None

    def observe(self, loss: torch.Tensor) -> None:
        bad = (~torch.isfinite(loss.detach())).to(torch.int64)
        self._count = bad if self._count is None else self._count + bad

    def count(self) -> int:
        return 0 if self._count is None else int(self._count)
