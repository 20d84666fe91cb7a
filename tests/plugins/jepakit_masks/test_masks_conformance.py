"""The conformance kit over every registered masker (third-party ones too, when
installed and autoload is on), with defaults and with hypothesis-drawn parameters, on
every grid rank each masker declares (image grids, and video grids for those that
support them); maskers for image grids only refuse a video grid in one line."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import strategies as st

from jepakit.masking import MaskingError, grid_ranks
from jepakit.registry import Registry
from jepakit.testing import check_masker

REGISTRY = Registry()
MASKERS = sorted(REGISTRY.components("masker"))
RANKS = {name: grid_ranks(REGISTRY.create("masker", name)) for name in MASKERS}


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
    "vjepa_multiblock": st.fixed_dictionaries({
        "configurations": st.lists(st.fixed_dictionaries({
            "num_blocks": st.integers(1, 8),
            "spatial_scale": _pair(0.05, 0.4, 0.2),
            "temporal_scale": _pair(0.25, 1.0, 0.75),
            "aspect_ratio": ASPECT,
        }), min_size=1, max_size=3),
        "min_keep": st.integers(1, 4),
        "lengths": st.sampled_from(["subsample", "truncate"]),
    }),
    "blockwise": st.fixed_dictionaries({
        "mask_ratio": st.floats(0.1, 0.8),
        "min_block_patches": st.integers(1, 32),
        "max_block_patches": st.none() | st.integers(1, 64),
        "aspect": ASPECT,
    }),
}


def _masker(case: str) -> str:
    """The masker a PARAMS case checks (``multiblock_official`` -> ``multiblock``)."""
    return case if case in MASKERS else case.partition("_")[0]


DEFAULT_CASES = [(name, rank) for name in MASKERS for rank in RANKS[name]]
PARAM_CASES = [(case, rank) for case in sorted(PARAMS) for rank in RANKS.get(_masker(case), (2,))]


@pytest.mark.parametrize(("name", "rank"), DEFAULT_CASES, ids=[f"{n}-{r}d" for n, r in DEFAULT_CASES])
def test_every_registered_masker_conforms_with_its_defaults(name, rank):
    check_masker(REGISTRY, name, max_examples=12, grid_ranks=(rank,))


@pytest.mark.parametrize(("case", "rank"), PARAM_CASES, ids=[f"{c}-{r}d" for c, r in PARAM_CASES])
def test_shipped_maskers_conform_over_their_parameters(case, rank):
    check_masker(REGISTRY, _masker(case), PARAMS[case], max_examples=20, grid_ranks=(rank,))


def test_video_grids_are_checked():
    """At least the V-JEPA masker and random masking run through the kit on video grids."""
    assert {"vjepa_multiblock", "random"} <= {name for name, rank in DEFAULT_CASES if rank == 3}


@pytest.mark.parametrize("name", [n for n in MASKERS if 3 not in RANKS[n]])
def test_image_only_maskers_refuse_a_video_grid_in_one_line(name):
    masker = REGISTRY.create("masker", name)
    with pytest.raises(MaskingError) as info:
        masker(2, (4, 8, 8), torch.Generator().manual_seed(0))
    message = str(info.value)
    assert "\n" not in message and "2-D patch grid" in message and "4x8x8" in message


def test_every_shipped_masker_has_a_parameter_strategy():
    shipped = {n for n, c in REGISTRY.components("masker").items() if "(jepakit " in c.provider}
    assert shipped <= {_masker(case) for case in PARAMS}
