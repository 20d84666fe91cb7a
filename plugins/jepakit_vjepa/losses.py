"""V-JEPA's loss: L1 between predicted and target tokens, the targets layer-normed
without affine parameters (Bardes et al. 2024, eq. 1; the official code's ``loss_exp: 1``).

The official code takes the mean absolute error of each (context, target) pair and
averages the pairs (``reduction: pairs``), so a configuration with small targets (8
blocks of spatial scale 0.15) weighs as much as one with large targets (2 blocks of
0.7); ``reduction: tokens`` averages over all predicted tokens instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v

from jepakit.losses import TokenRegression


@attrs.define
class L1LossConfig:
    normalize_targets: bool = True
    """Layer-norm the target features (no affine) before regressing them."""
    reduction: Literal["pairs", "tokens"] = attrs.field(default="pairs",
                                                        validator=v.in_(("pairs", "tokens")))
    """``pairs``: mean per prediction, then over predictions (official); ``tokens``: over
    all predicted tokens at once."""


class L1Loss(TokenRegression):
    def __init__(self, config: L1LossConfig) -> None:
        self.config = config

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        if not self.config.normalize_targets:
            return features
        return F.layer_norm(features, features.shape[-1:])

    def distance(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, tgt)

    def __call__(self, predictions: Sequence[torch.Tensor],
                 targets: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.config.reduction == "tokens":
            return super().__call__(predictions, targets)
        if len(predictions) != len(targets) or not predictions:
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
        terms = [self.distance(p.float(), t.to(p.dtype).float())
                 for p, t in zip(predictions, targets, strict=True)]
        return torch.stack(terms).mean()
