"""The V-JEPA training step (Bardes et al. 2024; V-JEPA 2, Assran et al. 2025) as a
registered method: the target encoder sees the whole clip; for each mask configuration
``c`` the context encoder sees ``context[c]`` and the predictor, with configuration
``c``'s mask token, predicts the target features at ``targets[c]``.

Masks pair by index (a masker's ``pairing = "zip"``), unlike I-JEPA where every context
predicts every target. A masker with one context and several targets (I-JEPA's) still
works: that context predicts each target. Everything else (the EMA target, evaluation
encoder, checkpoint state) is I-JEPA's method unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
from attrs import validators as v
from jepakit_ijepa.method import IJEPA

from jepakit.contracts import StepOutputs, StepResult
from jepakit.errors import JepakitError


@attrs.define
class VJEPAConfig:
    mask_tokens: Literal["per_config", "shared"] = attrs.field(
        default="per_config", validator=v.in_(("per_config", "shared")))
    """``per_config``: configuration ``c`` uses mask token ``c`` (the V-JEPA paper; the
    jepa code's ``PredictorMultiMaskWrapper``). ``shared``: every configuration uses
    mask token 0, which is what the vjepa2 code does with one clip length (its wrapper
    indexes the mask token by clip-length group, not by mask configuration)."""


def pairs(masks: Any) -> list[tuple[int, int]]:
    """(context index, target index) pairs: by index when the counts agree, else one
    context with every target."""
    nc, nt = len(masks.context), len(masks.targets)
    if nc == nt:
        return [(c, c) for c in range(nc)]
    if nc == 1:
        return [(0, t) for t in range(nt)]
    raise JepakitError(f"the masker gave {nc} context masks and {nt} target masks: V-JEPA "
                       "pairs context c with target c (or one context with every target)")


class VJEPA(IJEPA):
    """Online encoder + predictor (trained), target encoder (built and updated by the
    target updater); fits :class:`jepakit.contracts.Method`."""

    def forward(self, batch: Any, step: int) -> StepResult:
        clips, masks = batch.images, batch.masks
        features, targets = self.targets(clips, masks)
        wants_embeddings = "embeddings" in self.loss_fn.inputs
        shared = self.config.mask_tokens == "shared"
        predictions: list[torch.Tensor] = []
        expected: list[torch.Tensor] = []
        embeddings: list[torch.Tensor] = []
        tokens_of: dict[int, torch.Tensor] = {}
        for c, t in pairs(masks):
            context = masks.context[c]
            if c not in tokens_of:
                tokens_of[c] = self.encoder(clips, keep=context)
                if wants_embeddings:
                    embeddings.append(tokens_of[c].mean(1))
            predictions += self.predictor(tokens_of[c], context, [masks.targets[t]],
                                          mask_index=0 if shared else t)
            expected.append(targets[t])
        outputs = StepOutputs(predictions=predictions, targets=expected, embeddings=embeddings,
                              num_global=len(embeddings), target_features=features.detach(),
                              step=step, seed=self.seed)
        loss, terms = self.loss_fn(outputs)
        used = {0} if shared else {t for _, t in pairs(masks)}
        return StepResult(loss + self._idle_mask_tokens(used), terms, outputs)

    def _idle_mask_tokens(self, used: set[int]) -> torch.Tensor | float:
        """Zero times the mask tokens this step did not use: DDP (which the engine runs
        without ``find_unused_parameters``) needs every trained parameter in the graph,
        and ``shared`` mode, or fewer configurations than tokens (the released predictors
        have 10), leaves some out. Their gradient is then zero, not missing."""
        tokens = getattr(self.predictor, "mask_tokens", None)
        idle = [p for i, p in enumerate(tokens or []) if i not in used and p.requires_grad]
        return sum((p.sum() * 0.0 for p in idle), 0.0)
