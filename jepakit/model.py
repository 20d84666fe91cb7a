"""The generic JEPA: five components wired by their contracts (design.md section 3).

``JEPA.loss(images, masks)`` is the whole forward of one training step. It
knows nothing about ViTs, multi-block masks or EMA: only the contracts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jepakit.contracts import Masks
from jepakit.ops import gather_tokens
from jepakit.recipe import Recipe


class JEPA(nn.Module):
    """Online encoder + predictor (trained), target encoder (updated by the target updater)."""

    def __init__(self, encoder: nn.Module, predictor: nn.Module, target_updater: Any,
                 loss_fn: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = target_updater.build(encoder)
        self.target_updater = target_updater
        self.loss_fn = loss_fn

    @property
    def patch_grid(self) -> tuple[int, int]:
        h, w = getattr(self.encoder, "patch_grid")  # noqa: B009 (contract attribute)
        return int(h), int(w)

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = getattr(self.encoder, "image_size")  # noqa: B009 (contract attribute)
        return int(h), int(w)

    @property
    def in_chans(self) -> int:
        return int(getattr(self.encoder, "in_chans"))  # noqa: B009 (contract attribute)

    def trainable(self) -> list[nn.Module]:
        return [self.encoder, self.predictor]

    @torch.no_grad()
    def targets(self, images: torch.Tensor, masks: Masks) -> list[torch.Tensor]:
        """Target features over the full image, transformed by the loss, gathered per block."""
        features = self.loss_fn.prepare_targets(self.target_encoder(images))
        return [gather_tokens(features, idx) for idx in masks.targets]

    def loss(self, images: torch.Tensor, masks: Masks,
             encoder: nn.Module | None = None, predictor: nn.Module | None = None) -> torch.Tensor:
        """Loss for one batch. ``encoder``/``predictor`` may be DDP wrappers of ours."""
        encoder = encoder or self.encoder
        predictor = predictor or self.predictor
        targets = self.targets(images, masks)
        predictions: list[torch.Tensor] = []
        expected: list[torch.Tensor] = []
        for context in masks.context:
            tokens = encoder(images, keep=context)
            predictions += predictor(tokens, context, masks.targets)
            expected += targets
        return self.loss_fn(predictions, expected)

    @torch.no_grad()
    def update_target(self, step: int) -> None:
        self.target_updater.update(self.encoder, self.target_encoder, step)


def build_jepa(recipe: Recipe, registry: Any, device: torch.device | str = "cpu",
               total_steps: int | None = None) -> tuple[JEPA, Any]:
    """Create the JEPA's components on ``device`` (``"meta"`` builds without memory).

    Returns the model and the masker.
    """
    total = total_steps if total_steps is not None else recipe.train.total_steps
    with torch.device(device):
        encoder = registry.create("encoder", recipe.encoder.name, recipe.encoder.params,
                                  path="encoder.params")
        predictor = registry.create(
            "predictor", recipe.predictor.name, recipe.predictor.params, path="predictor.params",
            embed_dim=encoder.embed_dim, patch_grid=tuple(encoder.patch_grid),
        )
        updater = registry.create("target_updater", recipe.target_updater.name,
                                  recipe.target_updater.params, path="target_updater.params",
                                  total_steps=total)
        loss_fn = registry.create("loss", recipe.loss.name, recipe.loss.params, path="loss.params")
        model = JEPA(encoder, predictor, updater, loss_fn)
    masker = registry.create("masker", recipe.masker.name, recipe.masker.params,
                             path="masker.params")
    return model, masker
