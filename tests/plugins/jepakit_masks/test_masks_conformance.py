"""The conformance kit over every registered masker (third-party ones too, when
installed and autoload is on), with defaults and with hypothesis-drawn parameters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st

from jepakit.registry import Registry
from jepakit.testing import check_masker

REGISTRY = Registry()
MASKERS = sorted(REGISTRY.components("masker"))


def _pair(lo: float, hi: float, width: float) -> st.SearchStrategy[list[float]]:
    """[low, high] with lo <= low <= high <= min(hi, low + width)."""
    return st.floats(lo, hi).flatmap(
        lambda a: st.floats(a, min(hi, a + width)).map(lambda b: [a, b]))


ASPECT = st.tuples(st.floats(0.3, 1.0), st.floats(1.0, 3.0)).map(list)

MULTIBLOCK: dict[str, st.SearchStrategy[Any]] = {
    "num_targets": st.integers(1, 4),
    "target_scale": _pair(0.05, 0.25, 0.1),
    "target_aspect": ASPECT,
    "context_scale": _pair(0.6, 1.0, 0.4),
    "allow_overlap": st.booleans(),
    "min_keep": st.integers(1, 6),
}

PARAMS: dict[str, Any] = {
    "multiblock": st.fixed_dictionaries(MULTIBLOCK),
    "multiblock_buckets": st.fixed_dictionaries({**MULTIBLOCK,
                                                 "length_buckets": st.integers(1, 4)}),
    "multiblock_official": st.fixed_dictionaries({
        "mode": st.just("official"),
        "num_targets": st.integers(1, 4),
        "target_scale": _pair(0.1, 0.25, 0.1),
        "target_aspect": st.tuples(st.floats(0.75, 1.0), st.floats(1.0, 1.5)).map(list),
        "context_scale": _pair(0.85, 1.0, 0.15),
        "allow_overlap": st.booleans(),
        "min_keep": st.integers(1, 4),
    }),
    "random": st.fixed_dictionaries({"mask_ratio": st.floats(0.05, 0.95)}),
    "block": st.fixed_dictionaries({"target_scale": _pair(0.1, 0.9, 0.3),
                                    "target_aspect": ASPECT}),
    "rasterized": st.fixed_dictionaries({"num_targets": st.integers(1, 3)}),
    "blockwise": st.fixed_dictionaries({
        "mask_ratio": st.floats(0.1, 0.8),
        "min_block_patches": st.integers(1, 32),
        "max_block_patches": st.none() | st.integers(1, 64),
        "aspect": ASPECT,
    }),
}


def _masker(case: str) -> str:
    """The masker a PARAMS case checks (``multiblock_official`` -> ``multiblock``)."""
    return case.partition("_")[0]


@pytest.mark.parametrize("name", MASKERS)
def test_every_registered_masker_conforms_with_its_defaults(name):
    check_masker(REGISTRY, name, max_examples=12)


@pytest.mark.parametrize("case", sorted(PARAMS))
def test_shipped_maskers_conform_over_their_parameters(case):
    name = _masker(case)
    check_masker(REGISTRY, name, PARAMS[case], max_examples=20)


def test_every_shipped_masker_has_a_parameter_strategy():
    shipped = {n for n, c in REGISTRY.components("masker").items() if "(jepakit " in c.provider}
    assert shipped <= {_masker(case) for case in PARAMS}
