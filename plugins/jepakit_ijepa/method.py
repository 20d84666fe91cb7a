"""The I-JEPA training step as a registered method (Assran et al., CVPR 2023,
arXiv 2301.08243, section 3): from one context block, predict the target encoder's
representations of several target blocks of the same image.

Built from the engine's component vocabulary only (encoder, masker, predictor,
target updater, loss terms), so data2vec-style targets, SIGReg as an extra loss term,
or a target that shares the online encoder (no EMA) are recipe changes, not code.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import torch
from torch import nn

from jepakit.contracts import StepOutputs, StepResult
from jepakit.ops import gather_tokens


@attrs.define
class IJEPAConfig:
    """I-JEPA has no settings of its own: its parts carry them."""


class IJEPA(nn.Module):
    """Online encoder + predictor (trained), target encoder (built and updated by the
    target updater); fits :class:`jepakit.contracts.Method`."""

    components = {"encoder": True, "masker": True, "predictor": True,
                  "target_updater": True, "loss": True}

    def __init__(self, config: IJEPAConfig, *, seed: int = 0, encoder: nn.Module,
                 predictor: nn.Module, target_updater: Any, loss: Any) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.encoder = encoder
        self.predictor = predictor
        self.target_encoder = target_updater.build(encoder)
        self.target_updater = target_updater
        self.loss_fn = loss

    @property
    def shares_target(self) -> bool:
        """The target is the online encoder itself (no teacher copy to update)."""
        return self.target_encoder is self.encoder

    def trainable(self) -> list[nn.Module]:
        return [self.encoder, self.predictor]

    def targets(self, images: torch.Tensor, masks: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Target features over the full image, and the prepared targets per block;
        without gradients unless the updater keeps none (``detach_targets``)."""
        detach = getattr(self.target_updater, "detach_targets", True)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not detach):
            features = self.target_encoder(images)
            prepared = self.loss_fn.prepare_targets(features)
            return features, [gather_tokens(prepared, idx) for idx in masks.targets]

    def forward(self, batch: Any, step: int) -> StepResult:
        images, masks = batch.images, batch.masks
        features, targets = self.targets(images, masks)
        wants_embeddings = "embeddings" in self.loss_fn.inputs
        predictions: list[torch.Tensor] = []
        expected: list[torch.Tensor] = []
        embeddings: list[torch.Tensor] = []
        for context in masks.context:  # each context mask predicts every target block
            tokens = self.encoder(images, keep=context)
            predictions += self.predictor(tokens, context, masks.targets)
            expected += targets
            if wants_embeddings:
                embeddings.append(tokens.mean(1))
        outputs = StepOutputs(predictions=predictions, targets=expected, embeddings=embeddings,
                              num_global=len(embeddings), target_features=features.detach(),
                              step=step, seed=self.seed)
        loss, terms = self.loss_fn(outputs)
        return StepResult(loss, terms, outputs)

    @torch.no_grad()
    def after_optimizer_step(self, step: int) -> None:
        if not self.shares_target:
            self.target_updater.update(self.encoder, self.target_encoder, step)

    def eval_encoder(self) -> nn.Module:
        """A plain encoder module with the target's weights: the updater's own module
        may be hooked to answer with something else (data2vec's layer average)."""
        if self.shares_target:
            return self.encoder
        plain = copy.deepcopy(self.encoder)
        plain.load_state_dict(self.target_encoder.state_dict())
        return plain.eval().requires_grad_(False)

    def log_values(self, step: int) -> dict[str, float]:
        return {} if self.shares_target else {"momentum": self.target_updater.momentum(step)}

    def extra_state(self) -> dict[str, Any]:
        return {"target_updater": self.target_updater.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.target_updater.load_state_dict(state["target_updater"])
