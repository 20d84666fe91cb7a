"""Parameter checks shared by the masker configs (raise ValueError, as attrs validators do)."""

from __future__ import annotations

from typing import Any


def interval(name: str, value: tuple[float, float], high: float | None = None) -> None:
    """``0 < low <= high`` (and ``high <= bound`` when given)."""
    lo, hi = value
    if not 0 < lo <= hi:
        raise ValueError(f"{name}: expected 0 < low <= high, got ({lo}, {hi})")
    if high is not None and hi > high:
        raise ValueError(f"{name}: at most {high}, got {hi}")


def ratio(name: str, value: float) -> None:
    """A fraction strictly between 0 and 1."""
    if not 0 < value < 1:
        raise ValueError(f"{name}: expected a fraction in (0, 1), got {value}")


def positive(instance: Any, attribute: Any, value: int) -> None:
    """attrs validator: an int > 0."""
    if value <= 0:
        raise ValueError(f"{attribute.name}: must be > 0, got {value}")
