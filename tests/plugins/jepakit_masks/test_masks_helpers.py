"""jepakit.masking: the vectorised building blocks maskers share."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jepakit.masking import (
    equalise,
    first_k,
    fit_shape,
    random_order,
    rect_indices,
    rect_masks,
    sample_equal,
    smallest_k,
    to_bool,
    to_indices,
)


@settings(max_examples=60, deadline=None)
@given(gh=st.integers(1, 20), gw=st.integers(1, 20), scale=st.floats(0.01, 1.0),
       aspect=st.floats(0.2, 5.0))
def test_fit_shape_fits_and_keeps_the_area_up_to_rounding(gh, gw, scale, aspect):
    area = scale * gh * gw
    h, w = fit_shape((gh, gw), area, aspect)
    assert 1 <= h <= gh and 1 <= w <= gw
    assert abs(h * w - area) <= (h + w) / 2 + 1


def test_fit_shape_grows_the_other_side_when_clipped():
    assert fit_shape((2, 20), 16.0, 1.0) == (2, 8)  # a 4x4 does not fit: 2x8 keeps the area


def test_rect_indices_match_rect_masks():
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 4, (5, 3), generator=g), torch.randint(0, 3, (5, 3), generator=g)
    idx = rect_indices((7, 6), top, left, 3, 2)
    masks = rect_masks((7, 6), top, left, 3, 2)
    assert idx.shape == (5, 3, 6)
    assert torch.equal(to_bool(idx.view(15, 6), 42), masks.view(15, 42))
    assert torch.equal(idx, idx.sort(-1).values)  # raster order


def test_random_order_keys_are_distinct_and_uniform():
    g = torch.Generator().manual_seed(0)
    keys = random_order(2000, 5, g)
    assert bool((keys.sort(1).values.diff(dim=1) > 0).all())
    first = keys.argmin(1)
    counts = torch.bincount(first, minlength=5).float() / 2000
    assert float(counts.min()) > 0.17 and float(counts.max()) < 0.23


def test_smallest_k_exact_counts():
    g = torch.Generator().manual_seed(0)
    keys = random_order(8, 30, g)
    for k in (0, 1, 13, 30):
        assert bool((smallest_k(keys, k).sum(1) == k).all())


def test_sample_equal_is_unbiased_over_positions():
    """Equalising keeps random members: every position equally likely."""
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(4000, 10, dtype=torch.bool)
    idx = sample_equal(mask, 3, g)
    p = torch.bincount(idx.flatten(), minlength=10).float() / 4000
    assert float(p.min()) > 0.27 and float(p.max()) < 0.33


def test_first_k_keeps_raster_order_prefix():
    mask = torch.tensor([[True, False, True, True], [False, True, True, True]])
    assert first_k(mask, 2).tolist() == [[0, 2], [1, 2]]


def test_equalise_draws_nothing_when_equal():
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    mask = torch.tensor([[True, False, True], [False, True, True]])
    assert equalise(mask, g).tolist() == [[0, 2], [1, 2]]
    assert torch.equal(g.get_state(), state)
    ragged = torch.tensor([[True, True, True], [False, True, True]])
    assert equalise(ragged, g).shape == (2, 2)


def test_to_indices_rejects_unequal_rows():
    import pytest

    with pytest.raises(ValueError, match="unequal"):
        to_indices(torch.tensor([[True, True], [True, False]]))
