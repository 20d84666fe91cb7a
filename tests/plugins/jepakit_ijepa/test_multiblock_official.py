"""``multiblock`` with ``mode: official`` reproduces the official I-JEPA collator's
quirks (docs/index.md; upstream issue #60 and PR #40); the corrected default
does not have them. Figures measured with jepakit.coverage, as ``jepakit masks stats``."""

from __future__ import annotations

import pytest
import torch
from jepakit_ijepa.multiblock import MultiBlockConfig, MultiBlockMasker, official_shape

from jepakit.coverage import measure
from jepakit.errors import JepakitError

OFFICIAL = MultiBlockMasker(MultiBlockConfig(mode="official"))
CORRECTED = MultiBlockMasker(MultiBlockConfig())


@pytest.mark.parametrize("side", [14, 16])
def test_official_never_covers_the_last_row_and_column(side):
    cov = measure(OFFICIAL, (side, side), batch_size=64, batches=20)
    for which in ("context", "target"):
        never = cov.never(which)
        assert never[side - 1].all() and never[:, side - 1].all()
        assert int(never.sum()) == 2 * side - 1  # exactly the last row and column
    assert float(cov.target[: side - 1, : side - 1].min()) > 0


@pytest.mark.parametrize("side", [14, 16])
def test_corrected_covers_every_patch(side):
    cov = measure(CORRECTED, (side, side), batch_size=64, batches=20)
    assert float(cov.context.min()) > 0.02
    assert float(cov.target.min()) > 0.02


@pytest.mark.parametrize("side", [14, 16])
def test_official_context_is_the_top_left_square(side):
    """With the paper's context scale the context block is (side-1)^2 at (0, 0) on
    every image: with overlap allowed (nothing removed) it is exactly that square."""
    masker = MultiBlockMasker(MultiBlockConfig(mode="official", allow_overlap=True))
    square = torch.arange(side * side).view(side, side)[: side - 1, : side - 1].flatten()
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        context = masker(16, (side, side), g).context[0]
        assert torch.equal(context, square.expand(16, -1))
    corrected = MultiBlockMasker(MultiBlockConfig(allow_overlap=True))
    firsts = {int(corrected(16, (side, side), g).context[0][0, 0]) for _ in range(20)}
    assert len(firsts) > 1  # the corrected context moves


def test_official_one_number_drives_scale_and_aspect():
    """Upstream draws one uniform number for both, so small targets are always wide
    and large ones tall: a handful of shapes. The corrected default draws them apart."""
    g = torch.Generator().manual_seed(0)
    official = {official_shape((14, 14), (0.15, 0.2), (0.75, 1.5), g) for _ in range(500)}
    assert len(official) <= 6
    widest = min(official, key=lambda s: s[0] / s[1])
    tallest = max(official, key=lambda s: s[0] / s[1])
    assert widest[0] * widest[1] < tallest[0] * tallest[1]
    assert not any(h < w and h * w >= 36 for h, w in official)  # no large wide blocks
    corrected = set()
    for seed in range(200):
        masks = CORRECTED(1, (14, 14), torch.Generator().manual_seed(seed))
        t = masks.targets[0][0]
        corrected.add((int(t.max() // 14 - t.min() // 14) + 1, int(t.max() % 14 - t.min() % 14) + 1))
    assert len(corrected) >= 2 * len(official)
    assert any(h < w and h * w >= 36 for h, w in corrected)


def test_official_block_sizes_once_per_batch_positions_per_image():
    masks = OFFICIAL(32, (14, 14), torch.Generator().manual_seed(3))
    lengths = {t.shape[1] for t in masks.targets}
    assert len(lengths) == 1
    starts = {int(t[b, 0]) for t in masks.targets for b in range(32)}
    assert len(starts) > 10


def test_official_truncation_keeps_the_top_left_of_each_context():
    """Contexts are cut to the batch minimum in raster order: at batch 128 on 16x16
    about 68 of 256 tokens are left (docs/index.md), mostly from the top rows."""
    cov = measure(OFFICIAL, (16, 16), batch_size=128, batches=20)
    assert 60 <= cov.context_tokens <= 76
    assert float(cov.context[:4].mean()) > 4 * float(cov.context[10:15].mean())
    corrected = measure(CORRECTED, (16, 16), batch_size=128, batches=20)
    top, bottom = float(corrected.context[:4].mean()), float(corrected.context[12:].mean())
    assert bottom > 0.7 * top  # no raster-order bias


def test_official_is_deterministic_under_a_generator():
    a = OFFICIAL(8, (14, 14), torch.Generator().manual_seed(5))
    torch.manual_seed(123)  # upstream would draw positions from here; we do not
    b = OFFICIAL(8, (14, 14), torch.Generator().manual_seed(5))
    for x, y in zip(a.context + a.targets, b.context + b.targets, strict=True):
        assert torch.equal(x, y)


def test_official_context_keeps_more_than_min_keep():
    masker = MultiBlockMasker(MultiBlockConfig(mode="official", min_keep=10))
    for seed in range(10):
        masks = masker(16, (14, 14), torch.Generator().manual_seed(seed))
        assert masks.context[0].shape[1] > 10


def test_official_infeasible_grid_is_a_user_error_not_a_hang():
    with pytest.raises(JepakitError, match="upstream would loop forever"):
        OFFICIAL(2, (4, 4), torch.Generator().manual_seed(0))
    with pytest.raises(JepakitError, match="at least 2x2"):
        OFFICIAL(2, (1, 9), torch.Generator().manual_seed(0))


def test_mode_is_validated(registry):
    with pytest.raises(JepakitError, match="masker.params.mode"):
        registry.create("masker", "multiblock", {"mode": "upstream"})
    official = registry.create("masker", "multiblock", {"mode": "official"})
    assert official.conformance["target_reachable"] is False
