"""The five component contracts the engine relies on (design.md section 3).

The engine talks to components only through these protocols; plugins need not
inherit from anything, they only have to fit the shapes below.
Shapes: B batch, N patches, K kept patches, D width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from torch import nn


@attrs.define(frozen=True)
class Masks:
    """What a masker returns for one batch.

    ``context[i]`` is LongTensor [B, Kc_i] and ``targets[j]`` LongTensor [B, Kt_j]:
    patch indices in raster order of ``patch_grid``, equal lengths within a batch.
    """

    context: list[torch.Tensor]
    targets: list[torch.Tensor]

    def to(self, device: torch.device | str) -> Masks:
        nb = torch.device(device).type == "cuda"
        return Masks(context=[m.to(device, non_blocking=nb) for m in self.context],
                     targets=[m.to(device, non_blocking=nb) for m in self.targets])


@runtime_checkable
class Encoder(Protocol):
    """``encoder(images [B,C,H,W], keep=None | [B,K]) -> tokens [B, K or N, D]``."""

    embed_dim: int
    patch_grid: tuple[int, int]
    image_size: tuple[int, int]
    in_chans: int

    def __call__(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class Masker(Protocol):
    """``masker(batch_size, patch_grid, generator) -> Masks``; must pickle (runs in workers)."""

    def __call__(
        self, batch_size: int, patch_grid: tuple[int, int], generator: torch.Generator
    ) -> Masks: ...


@runtime_checkable
class Predictor(Protocol):
    """``predictor(context_tokens [B,Kc,D], context_idx [B,Kc], target_idx) -> list of [B,Kt_j,D]``."""

    def __call__(
        self,
        context_tokens: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: Sequence[torch.Tensor],
    ) -> list[torch.Tensor]: ...


@runtime_checkable
class TargetUpdater(Protocol):
    """Owns the target network: ``build`` it from the online encoder, ``update`` it each step."""

    def build(self, online: nn.Module) -> nn.Module: ...

    def update(self, online: nn.Module, target: nn.Module, step: int) -> None: ...

    def momentum(self, step: int) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Loss(Protocol):
    """``prepare_targets`` turns raw target features into regression targets;
    ``loss(predictions, targets)`` returns a scalar tensor."""

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor: ...

    def __call__(
        self, predictions: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
    ) -> torch.Tensor: ...


KINDS: tuple[str, ...] = ("encoder", "masker", "predictor", "target_updater", "loss", "dataset")
"""Component kinds, in the order a recipe lists them."""

CONTRACTS: dict[str, type] = {
    "encoder": Encoder,
    "masker": Masker,
    "predictor": Predictor,
    "target_updater": TargetUpdater,
    "loss": Loss,
}
