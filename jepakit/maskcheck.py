"""The masker contract, checked on the masks a run actually draws.

The conformance kit (:mod:`jepakit.testing`) checks a masker thoroughly, but only
when its author runs it; a masker whose context overlaps its targets otherwise
trains silently (the predictor copies the answer and the loss still falls). So
``jepakit run``, ``--dry-run`` and ``jepakit masks stats`` check the masks of the
recipe's own masker, grid and batch size before any training, and the run keeps
checking a sample of later batches (:data:`CHECK_EVERY`). Only the contract's cheap
invariants are checked here (LongTensors [B, K], equal lengths in a batch, indices
in range and unique, context and targets disjoint unless the masker declares
overlap); scale, determinism and coverage stay with the kit. A violation is a
:class:`jepakit.ConfigError` naming the masker, step, image, patch and rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import torch

from jepakit.contracts import Masker, Masks
from jepakit.data.loader import MaskStream
from jepakit.errors import ConfigError, JepakitError
from jepakit.testing import ConformanceError, Expectations, check_masks, expectations

CHECK_EVERY = 100
"""After the first batch, every this-many-th step's masks are checked too (a masker
may break only on some draws). A check costs about a third of drawing the batch
(0.35 ms for ViT-H/14's masker at batch 128); on the CPU tiny recipe checking every
batch would add 0.07% to a step, one in 100 adds 7e-6 (benchmarks/maskcheck_cost.py)."""


def contract(masker: Any, name: str) -> Expectations:
    """What the run checks for ``masker``: the plain contract, with disjointness (and
    which context pairs with which target) as the masker declares them (``allow_overlap``
    or ``conformance={'disjoint': False}``); the scale checks are left to the kit."""
    try:
        declared = expectations(masker)
    except (JepakitError, TypeError) as exc:
        raise ConfigError(f"masker '{name}': {exc}") from None
    return attrs.evolve(declared, target_scale=None, context_scale=None)


def check_batch(masks: Any, batch_size: int, grid: Sequence[int], name: str,
                expect: Expectations, when: str) -> None:
    """Raise :class:`ConfigError` (one line) if ``masks`` break the contract. ``grid``:
    the patch grid as the masker got it (rows, columns; or frames, rows, columns)."""
    sides: Any = tuple(int(s) for s in grid)  # any rank: the kit takes video grids too
    where = f"masker '{name}' ({when}, grid {'x'.join(map(str, sides))}, batch {batch_size})"
    try:
        check_masks(masks, batch_size, sides, expect, where=where)
    except ConformanceError as exc:
        raise ConfigError(f"{exc}. The masker breaks the masker contract "
                          "(docs/plugins.md#contracts); check it with jepakit.testing.check_masker"
                          ) from None


def check_draw(masker: Masker, grid: Any, batch_size: int, seed: int, name: str) -> Masks:
    """Draw one batch as ``--dry-run`` does, check it, return it."""
    masks = masker(batch_size, grid, torch.Generator().manual_seed(seed))
    check_batch(masks, batch_size, grid, name, contract(masker, name), f"seed {seed}")
    return masks


class CheckingMasker:
    """``masker`` with every batch it draws checked (``jepakit masks stats``: 50 batches
    cost about 5 ms more); its other attributes (``length_levels``, ...) read through."""

    def __init__(self, masker: Masker, name: str) -> None:
        self.masker, self.name, self.expect = masker, name, contract(masker, name)
        self.batches = 0

    def __getattr__(self, attr: str) -> Any:
        if attr == "masker":  # not set yet (copying): no recursion
            raise AttributeError(attr)
        return getattr(self.masker, attr)

    def __call__(self, batch_size: int, patch_grid: Any, generator: torch.Generator) -> Masks:
        masks = self.masker(batch_size, patch_grid, generator)
        self.batches += 1
        check_batch(masks, batch_size, patch_grid, self.name, self.expect,
                    f"draw {self.batches}")
        return masks


class CheckedMaskStream(MaskStream):
    """A :class:`MaskStream` that checks the first batch it draws and every
    :data:`CHECK_EVERY`-th step's; :meth:`check_start` checks before step 1."""

    def __init__(self, masker: Masker, patch_grid: tuple[int, int], seed: int, rank: int = 0,
                 name: str = "masker", every: int = CHECK_EVERY) -> None:
        super().__init__(masker, patch_grid, seed, rank)
        self.name, self.every = name, max(1, int(every))
        self.expect = contract(masker, name)
        self._checked_any = False

    def check(self, masks: Masks, batch_size: int, step: int) -> None:
        check_batch(masks, batch_size, self.patch_grid, self.name, self.expect,
                    f"step {step + 1}, rank {self.rank}")
        self._checked_any = True

    def check_start(self, batch_size: int, step: int = 0) -> None:
        """Draw and check the masks of ``step`` (the first the run will train)."""
        self.check(super().__call__(batch_size, step), batch_size, step)

    def __call__(self, batch_size: int, step: int) -> Masks:
        masks = super().__call__(batch_size, step)
        if not self._checked_any or step % self.every == 0:
            self.check(masks, batch_size, step)
        return masks
