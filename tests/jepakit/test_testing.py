"""The masker conformance kit itself: a good masker passes, each deliberately
broken one fails with a message that names the broken invariant."""

from __future__ import annotations

import re

import attrs
import pytest
import torch

import jepakit
from jepakit.errors import ConfigError
from jepakit.masking import MaskingError, block_masks, random_order, smallest_k, to_indices
from jepakit.registry import Component, Registry
from jepakit.testing import (
    ConformanceError,
    Expectations,
    check_case,
    check_masker,
    check_masks,
    expectations,
)


@attrs.define
class PlainConfig:
    mask_ratio: float = 0.5


@attrs.define
class BlockConfig:
    target_scale: tuple[float, float] = (0.15, 0.2)
    allow_overlap: bool = False


def _split(batch: int, n: int, k: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = smallest_k(random_order(batch, n, g), k)
    return to_indices(~target), to_indices(target)


class Good:
    """Random split: a well-behaved masker."""

    def __init__(self, config: PlainConfig) -> None:
        self.config = config

    conformance = {"min_grid": (1, 2)}

    def __call__(self, batch, grid, g):
        n = grid[0] * grid[1]
        context, target = _split(batch, n, min(max(round(n * self.config.mask_ratio), 1), n - 1), g)
        return jepakit.Masks(context=[context], targets=[target])


class Overlapping(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        n = grid[0] * grid[1]
        return jepakit.Masks(context=[torch.arange(n).repeat(batch, 1)], targets=masks.targets)


class OutOfRange(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=[masks.context[0] + 1], targets=masks.targets)


class Duplicates(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        t = masks.targets[0]
        return jepakit.Masks(context=masks.context, targets=[torch.cat([t, t[:, :1]], dim=1)])


class GlobalRNG(Good):
    def __call__(self, batch, grid, g):
        return super().__call__(batch, grid, torch.Generator().manual_seed(int(torch.randint(9, ()))))


class Unpicklable(Good):
    def __init__(self, config: PlainConfig) -> None:
        super().__init__(config)
        self.hook = lambda x: x


class WrongDtype(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=[masks.context[0].int()], targets=masks.targets)


class RaggedBatch(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=masks.context, targets=[masks.targets[0][:1].repeat(batch + 1, 1)])


class EmptyContext(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=[masks.context[0][:, :0]], targets=masks.targets)


class NotMasks(Good):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return masks.context[0], masks.targets[0]


class LastRowNeverTarget(Good):
    """Targets drawn away from the last row, the official collator's quirk."""

    conformance = {"min_grid": (2, 2)}

    def __call__(self, batch, grid, g):
        gh, gw = grid
        n = gh * gw
        k = max(1, (n - gw) // 2)
        scores = random_order(batch, n, g)
        scores[:, n - gw:] = torch.iinfo(scores.dtype).max  # never pick the last row
        target = smallest_k(scores, k)
        return jepakit.Masks(context=[to_indices(~target)], targets=[to_indices(target)])


class DeclaredUnreachable(LastRowNeverTarget):
    conformance = {"min_grid": (2, 2), "target_reachable": False}


class TinyBlocks:
    """Declares block targets of 15-20% but draws 1x1 blocks."""

    def __init__(self, config: BlockConfig) -> None:
        self.config = config

    conformance = {"context_reachable": False}

    def __call__(self, batch, grid, g):
        target = block_masks((batch,), grid, (1, 1), g)
        return jepakit.Masks(context=[to_indices(~target)], targets=[to_indices(target)])


class ScatteredTargets(TinyBlocks):
    """Declares block targets but draws scattered patches."""

    def __call__(self, batch, grid, g):
        n = grid[0] * grid[1]
        context, target = _split(batch, n, round(0.18 * n), g)
        return jepakit.Masks(context=[context], targets=[target])


class OverlapAllowed(TinyBlocks):
    """Context is everything; fine because its config allows overlap."""

    conformance = {"target_scale": None}

    def __call__(self, batch, grid, g):
        n = grid[0] * grid[1]
        target = block_masks((batch,), grid, (1, 1), g)
        return jepakit.Masks(context=[torch.arange(n).repeat(batch, 1)], targets=[to_indices(target)])


class FailsEverywhere(Good):
    def __call__(self, batch, grid, g):
        raise MaskingError("never works")


class BadDeclaration(Good):
    conformance = {"reachabel": False}


MASKERS = {
    "good": (Good, PlainConfig),
    "overlapping": (Overlapping, PlainConfig),
    "out_of_range": (OutOfRange, PlainConfig),
    "duplicates": (Duplicates, PlainConfig),
    "global_rng": (GlobalRNG, PlainConfig),
    "unpicklable": (Unpicklable, PlainConfig),
    "wrong_dtype": (WrongDtype, PlainConfig),
    "ragged": (RaggedBatch, PlainConfig),
    "empty_context": (EmptyContext, PlainConfig),
    "not_masks": (NotMasks, PlainConfig),
    "last_row": (LastRowNeverTarget, PlainConfig),
    "declared_unreachable": (DeclaredUnreachable, PlainConfig),
    "tiny_blocks": (TinyBlocks, BlockConfig),
    "scattered": (ScatteredTargets, BlockConfig),
    "overlap_allowed": (OverlapAllowed, BlockConfig),
    "fails": (FailsEverywhere, PlainConfig),
    "bad_declaration": (BadDeclaration, PlainConfig),
}


class _Plugin:
    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [Component(name, cls, config) for name, (cls, config) in MASKERS.items()]


@pytest.fixture(scope="module")
def kit_registry() -> Registry:
    return Registry([_Plugin()], entry_points=False)


@pytest.mark.parametrize("name", ["good", "declared_unreachable"])
def test_conforming_maskers_pass(kit_registry, name):
    check_masker(kit_registry, name, max_examples=8)


def test_overlap_passes_when_the_config_allows_it(kit_registry):
    check_masker(kit_registry, "overlap_allowed", {"allow_overlap": True}, max_examples=5)
    with pytest.raises(ConformanceError, match="overlap"):
        check_masker(kit_registry, "overlap_allowed", max_examples=5)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("overlapping", r"context\[0\] and the targets overlap in image 0 at patch"),
        ("out_of_range", r"context\[0\] holds index \d+ in image \d+, out of range \[0, 196\)"),
        ("duplicates", r"targets\[0\] repeats patch \d+ in image 0"),
        ("global_rng", r"not deterministic: .* draw only from the generator passed in"),
        ("unpicklable", r"does not pickle .*DataLoader workers"),
        ("wrong_dtype", r"context\[0\] has dtype torch.int32, expected torch.int64"),
        ("ragged", r"targets\[0\] has shape \(5, \d+\), expected \[4, K\]"),
        ("empty_context", r"context\[0\] is empty"),
        ("not_masks", r"returned tuple, expected jepakit.Masks"),
        ("tiny_blocks", r"targets\[0\] of image 0 is a 1x1 block \(1 patches\), outside "
                        r"target_scale=\(0.15, 0.2\)"),
        ("scattered", r"targets\[0\] of image \d+ is not one rectangle"),
        ("fails", r"fails on the reference 14x14 grid: never works"),
    ],
)
def test_broken_maskers_fail_with_a_clear_message(kit_registry, name, message):
    with pytest.raises(ConformanceError, match=message) as info:
        check_masker(kit_registry, name, max_examples=5)
    assert f"masker '{name}'" in str(info.value)


def test_unreachable_patches_are_named(kit_registry):
    with pytest.raises(ConformanceError) as info:
        check_masker(kit_registry, "last_row", max_examples=5)
    message = str(info.value)
    assert "never in any target" in message
    assert re.search(r": \d+: row \d+;", message), message
    assert "declare conformance={'target_reachable': False}" in message


def test_unknown_conformance_key_is_named(kit_registry):
    with pytest.raises(ConfigError, match="unknown key 'reachabel'"):
        check_masker(kit_registry, "bad_declaration", max_examples=2)


def test_unknown_masker_lists_the_valid_ones(kit_registry):
    with pytest.raises(jepakit.RegistryError, match="valid: .*good"):
        check_masker(kit_registry, "nope")


def test_expectations_read_from_config_and_declaration():
    assert expectations(Good(PlainConfig())) == Expectations(min_grid=(1, 2))
    blocks = expectations(TinyBlocks(BlockConfig(allow_overlap=True)))
    assert blocks.target_scale == (0.15, 0.2) and not blocks.disjoint
    assert not blocks.context_reachable and blocks.target_reachable
    assert expectations(OverlapAllowed(BlockConfig())).target_scale is None


def test_check_case_and_check_masks_work_without_hypothesis():
    masks = check_case(Good(PlainConfig()), 3, (5, 7), seed=1)
    check_masks(masks, 3, (5, 7))
    with pytest.raises(ConformanceError, match="expected \\[4, K\\]"):
        check_masks(masks, 4, (5, 7))


@attrs.define
class StrictConfig:
    mask_ratio: float = attrs.field(default=0.5)

    @mask_ratio.validator
    def _check(self, attribute, value):
        if not 0 < value < 1:
            raise ValueError("mask_ratio must be in (0, 1)")


class StrictPlugin:
    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [Component("strict", Good, StrictConfig)]


def test_param_strategies_reject_invalid_configs():
    from hypothesis import strategies as st

    registry = Registry([StrictPlugin()], entry_points=False)
    # half of these ratios are invalid: skipped, the valid ones checked
    check_masker(registry, "strict", st.fixed_dictionaries({"mask_ratio": st.floats(0.1, 1.9)}),
                 max_examples=10)


# -- video grids and zip pairing ------------------------------------------------------------


def _video_split(batch, grid, g, configurations=2):
    """Per configuration a random split of every clip's patches into context and target."""
    n = grid[0] * grid[1] * (grid[2] if len(grid) == 3 else 1)
    pairs = [_split(batch, n, max(1, n // 3), g) for _ in range(configurations)]
    return [c for c, _ in pairs], [t for _, t in pairs]


class ZipMasker(Good):
    """Two configurations, context[c] paired with targets[c] only (V-JEPA style)."""

    pairing = "zip"
    conformance = {"min_grid": (1, 2), "grid_ranks": (2, 3)}

    def __call__(self, batch, grid, g):
        context, targets = _video_split(batch, grid, g)
        return jepakit.Masks(context=context, targets=targets)


class ZipSwapped(ZipMasker):
    """Pairs each context with the other configuration's target: overlaps its own."""

    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=masks.context[::-1], targets=masks.targets)


class ZipUneven(ZipMasker):
    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        return jepakit.Masks(context=masks.context[:1], targets=masks.targets)


class VideoOverlap(ZipMasker):
    """On a video grid, the context holds every patch."""

    pairing = "all"

    def __call__(self, batch, grid, g):
        masks = super().__call__(batch, grid, g)
        n = grid[0] * grid[1] * (grid[2] if len(grid) == 3 else 1)
        return jepakit.Masks(context=[torch.arange(n).repeat(batch, 1)], targets=masks.targets[:1])


class LastFrameNeverTarget(ZipMasker):
    """Never puts the last frame of a clip in a target."""

    pairing = "all"
    conformance = {"min_grid": (2, 1, 2), "grid_ranks": (3,)}

    def __call__(self, batch, grid, g):
        t, h, w = grid
        n, per_frame = t * h * w, h * w
        scores = random_order(batch, n, g)
        scores[:, n - per_frame:] = torch.iinfo(scores.dtype).max
        target = smallest_k(scores, max(1, (n - per_frame) // 2))
        return jepakit.Masks(context=[to_indices(~target)], targets=[to_indices(target)])


class BadPairing(Good):
    pairing = "pairwise"


class BadRanks(Good):
    conformance = {"grid_ranks": (4,)}


VIDEO_MASKERS = {"zip": ZipMasker, "zip_swapped": ZipSwapped, "zip_uneven": ZipUneven,
                 "video_overlap": VideoOverlap, "last_frame": LastFrameNeverTarget,
                 "bad_pairing": BadPairing, "bad_ranks": BadRanks}


class _VideoPlugin:
    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [Component(name, cls, PlainConfig) for name, cls in VIDEO_MASKERS.items()]


@pytest.fixture(scope="module")
def video_registry() -> Registry:
    return Registry([_VideoPlugin()], entry_points=False)


def test_zip_pairing_passes_on_image_and_video_grids(video_registry):
    assert expectations(ZipMasker(PlainConfig())).pairing == "zip"
    for rank in (2, 3):
        check_masker(video_registry, "zip", max_examples=8, grid_ranks=(rank,))


def test_zip_masks_fail_when_checked_as_every_context_with_every_target():
    masks = ZipMasker(PlainConfig())(4, (2, 4, 4), torch.Generator().manual_seed(0))
    check_masks(masks, 4, (2, 4, 4), Expectations(pairing="zip"))
    with pytest.raises(ConformanceError, match=r"context\[0\] and the targets overlap in clip"):
        check_masks(masks, 4, (2, 4, 4), Expectations(pairing="all"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zip_swapped", r"\(grid 8x14x14, .*context\[0\] and targets\[0\] overlap in clip \d+ at "
                        r"patch \d+ \(frame, row, column \d+, \d+, \d+\)"),
        ("zip_uneven", r"pairing 'zip' pairs context\[c\] with targets\[c\], but there are 1 "
                       r"contexts and 2 targets"),
        ("video_overlap", r"context\[0\] and the targets overlap in clip 0"),
    ],
)
def test_broken_video_maskers_fail_naming_clip_and_frame(video_registry, name, message):
    with pytest.raises(ConformanceError, match=message):
        check_masker(video_registry, name, max_examples=4, grid_ranks=(3,))


def test_unreachable_frame_is_named(video_registry):
    with pytest.raises(ConformanceError) as info:
        check_masker(video_registry, "last_frame", max_examples=4)
    message = str(info.value)
    assert re.search(r"never in any target over \d+ clips: \d+: frame \d+;", message), message


@pytest.mark.parametrize(("name", "message"), [("bad_pairing", "pairing: expected one of"),
                                               ("bad_ranks", "grid_ranks must list 2 and/or 3")])
def test_bad_video_declarations_are_named(video_registry, name, message):
    with pytest.raises(ConfigError, match=message):
        check_masker(video_registry, name, max_examples=2)


def test_checking_an_undeclared_rank_is_refused(kit_registry):
    with pytest.raises(ConformanceError, match=r"declares grid_ranks=\(2,\), asked to check"):
        check_masker(kit_registry, "good", max_examples=2, grid_ranks=(3,))


def test_box_targets_on_a_video_grid_are_checked_against_the_scale():
    # one 2x2x2 box of a 4x4x4 grid: 8 of 64 patches, 12.5%
    target = torch.zeros(3, 4, 4, 4, dtype=torch.bool)
    target[:, 1:3, 0:2, 2:4] = True
    masks = jepakit.Masks(context=[to_indices(~target.flatten(1))],
                          targets=[to_indices(target.flatten(1))])
    check_masks(masks, 3, (4, 4, 4), Expectations(target_scale=(0.1, 0.15)))
    with pytest.raises(ConformanceError, match=r"targets\[0\] of clip 0 is a 2x2x2 block "
                                               r"\(8 patches\), outside target_scale"):
        check_masks(masks, 3, (4, 4, 4), Expectations(target_scale=(0.5, 0.6)))
    target[:, 0, 0, 0] = True  # a ninth patch outside the box
    scattered = jepakit.Masks(context=[to_indices(~target.flatten(1))],
                              targets=[to_indices(target.flatten(1))])
    with pytest.raises(ConformanceError, match=r"not one box \(9 patches in a 3x2x4 box\)"):
        check_masks(scattered, 3, (4, 4, 4), Expectations(target_scale=(0.1, 0.15)))
