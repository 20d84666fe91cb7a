"""Bucket levels: optimal against brute force, and snapping moves values the right way."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jepakit.buckets import best_levels, snap

samples = st.lists(st.integers(1, 60), min_size=1, max_size=40)


def _cost(values: list[int], levels: tuple[int, ...], rule: str) -> int:
    return sum(abs(v - snap(v, levels, rule)) for v in values)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(values=samples, count=st.integers(1, 4), rule=st.sampled_from(["down", "nearest"]))
def test_levels_are_optimal(values, count, rule):
    levels = best_levels(values, count, rule)
    distinct = sorted(set(values))
    assert list(levels) == sorted(set(levels)) and set(levels) <= set(distinct)
    assert len(levels) == min(count, len(distinct))
    if rule == "down":
        assert levels[0] == min(values)  # nothing is left below every level
    best = min(_cost(values, c, rule) for c in combinations(distinct, len(levels))
               if rule == "nearest" or c[0] == distinct[0])
    assert _cost(values, levels, rule) == best


@settings(max_examples=100, deadline=None)
@given(value=st.integers(0, 100), levels=st.lists(st.integers(1, 90), min_size=1, max_size=5))
def test_snap(value, levels):
    down = snap(value, levels, "down")
    assert down <= value and (down in levels or down == value < min(levels))
    near = snap(value, levels, "nearest")
    assert near in levels and all(abs(value - near) <= abs(value - lv) for lv in levels)


def test_bad_input():
    with pytest.raises(ValueError):
        best_levels([1, 2], 0, "down")
    with pytest.raises(ValueError):
        best_levels([], 2, "down")
