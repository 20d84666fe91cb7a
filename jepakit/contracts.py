"""The component contracts the engine relies on (docs/plugins.md#contracts).

The engine talks to components only through these protocols; plugins need not
inherit from anything, they only have to fit the shapes below.
Shapes: B batch, N patches, K kept patches, D width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import torch
from torch import nn


@attrs.define(frozen=True)
class Masks:
    """What a masker returns for one batch.

    ``context[i]`` is LongTensor [B, Kc_i] and ``targets[j]`` LongTensor [B, Kt_j]:
    patch indices in raster order of ``patch_grid`` (of any rank: (rows, columns) for
    images, (frames, rows, columns) for video, frames major), equal lengths within a
    batch. Which context pairs with which target is the masker's ``pairing``: "all"
    (the default, I-JEPA: every context with every target) or "zip" (V-JEPA:
    ``context[c]`` with ``targets[c]`` only, one pair per mask configuration).
    """

    context: list[torch.Tensor]
    targets: list[torch.Tensor]

    def to(self, device: torch.device | str) -> Masks:
        if torch.device(device).type != "cuda":
            return Masks(context=[m.to(device) for m in self.context],
                         targets=[m.to(device) for m in self.targets])
        # Pinned, so the copy does not wait for the device to finish the previous step.
        return Masks(context=[_pinned(m).to(device, non_blocking=True) for m in self.context],
                     targets=[_pinned(m).to(device, non_blocking=True) for m in self.targets])


def _pinned(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_cuda or t.is_pinned() else t.pin_memory()


@runtime_checkable
class Encoder(Protocol):
    """``encoder(images [B,C,H,W], keep=None | [B,K]) -> tokens [B, K or N, D]``.

    ``patch_grid`` is (rows, columns) for an image encoder; a video encoder takes clips
    [B, C, T, H, W], has ``num_frames`` and ``tubelet`` too, and its grid is
    (frames, rows, columns) = (T // tubelet, H // p, W // p). N is the grid's product."""

    embed_dim: int
    patch_grid: tuple[int, ...]
    image_size: tuple[int, int]
    in_chans: int

    def __call__(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class Masker(Protocol):
    """``masker(batch_size, patch_grid, generator) -> Masks``; must pickle (runs in workers).

    ``patch_grid`` may be 2-D (rows, columns) or 3-D (frames, rows, columns); a masker
    declares the ranks it supports in ``conformance["grid_ranks"]`` (default ``(2,)``)
    and raises :class:`jepakit.masking.MaskingError` on others. A class attribute
    ``pairing = "zip"`` says ``context[c]`` pairs with ``targets[c]`` only (default
    "all")."""

    def __call__(
        self, batch_size: int, patch_grid: tuple[int, ...], generator: torch.Generator
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
    """Owns the target network: ``build`` it from the online encoder, ``update`` it after
    each optimizer step.

    ``build`` may return the online encoder itself (LeJEPA: no teacher); then nothing
    is copied and ``update`` is never called. ``detach_targets`` (default True) says
    whether targets are computed without gradients (stop-gradient, as with an EMA)."""

    def build(self, online: nn.Module) -> nn.Module: ...

    def update(self, online: nn.Module, target: nn.Module, step: int) -> None: ...

    def momentum(self, step: int) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Projector(Protocol):
    """``projector(embeddings [B, D]) -> [B, out_dim]``: a trainable head between the
    backbone and the loss (LeJEPA's MLP), saved and probed apart from the backbone."""

    out_dim: int

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor: ...


@attrs.define
class StepOutputs:
    """What a method's step produced. A loss reads the fields its ``inputs`` name,
    so one loss (SIGReg) can serve any method that fills ``embeddings``."""

    predictions: list[torch.Tensor] = attrs.field(factory=list)
    """Predicted target tokens, one [B, Kt, D] per (context, target block) pair."""
    targets: list[torch.Tensor] = attrs.field(factory=list)
    """The regression targets matching ``predictions``."""
    embeddings: list[torch.Tensor] = attrs.field(factory=list)
    """Per-view embeddings [B, D'] (projected when the method has a projector), global
    views first; I-JEPA gives its pooled context embedding per context mask."""
    num_global: int = 0
    """How many leading ``embeddings`` are global views (the invariance centre)."""
    target_features: torch.Tensor | None = None
    """The target network's tokens [B, N, D] over the whole image, when there are any
    (read by the collapse monitors instead of running the network again)."""
    step: int = 0
    seed: int = 0

    def read(self, names: Sequence[str], who: str = "loss") -> list[Any]:
        missing = [n for n in names if not hasattr(self, n)]
        if missing:
            valid = ", ".join(f.name for f in attrs.fields(StepOutputs))
            raise ValueError(f"{who} reads unknown step output(s) {missing}; valid: {valid}")
        return [getattr(self, n) for n in names]


@runtime_checkable
class Loss(Protocol):
    """``loss(*inputs) -> scalar tensor`` or a ``dict`` of named terms (summed).

    ``inputs`` (class attribute, default ``("predictions", "targets")``) names the
    :class:`StepOutputs` fields the loss reads. A regression loss may also define
    ``prepare_targets(features)``, which turns raw target features into targets
    (I-JEPA: LayerNorm without affine) before they are gathered."""

    def __call__(self, *inputs: Any) -> torch.Tensor | dict[str, torch.Tensor]: ...


@attrs.define
class StepResult:
    """A method's answer for one batch: the loss to minimise, the loss terms (for
    metrics.jsonl, as ``loss/<term>``) and the outputs (for monitors)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    outputs: StepOutputs


@runtime_checkable
class Method(Protocol):
    """A training method (I-JEPA, LeJEPA, ...): an ``nn.Module`` that owns its component
    modules and computes one step's loss; the engine does the rest (optimizer and
    schedules, precision, DDP over the whole method, non-finite and preemption handling,
    checkpoints, logging). In the spirit of torchtitan's ``TrainSpec``.

    - ``components`` (class attribute): recipe sections it is built from, each mapped
      to whether it is required; the engine builds those and passes them to the
      factory by kind name (``encoder=...``, ``loss=...`` the composed loss terms).
    - ``forward(batch, step) -> StepResult``: the differentiable part of a step.
    - ``trainable()``: the modules the optimizer updates.
    - ``after_optimizer_step(step)``: e.g. the EMA update (or nothing).
    - ``eval_encoder()``: the plain backbone module evaluation and export read.
    - ``log_values(step)``: host-side values for metrics.jsonl (e.g. ``momentum``).
    - ``extra_state()`` / ``load_extra_state(state)``: non-module state for checkpoints
      (module weights are saved per child module, under its attribute name).
    """

    components: Mapping[str, bool]

    def __call__(self, batch: Any, step: int) -> StepResult: ...

    def trainable(self) -> list[nn.Module]: ...

    def after_optimizer_step(self, step: int) -> None: ...

    def eval_encoder(self) -> nn.Module: ...

    def log_values(self, step: int) -> dict[str, float]: ...

    def extra_state(self) -> dict[str, Any]: ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...
