"""Regression losses between predicted and target patch representations.

Targets are the target encoder's outputs, layer-normed without affine
parameters (I-JEPA, section 3). The official code uses smooth L1 (beta 1);
the paper writes an L2 distance.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from jepakit.losses import TokenRegression


@attrs.define
class RegressionLossConfig:
    normalize_targets: bool = True
    """Layer-norm the target features (no affine) before regressing them."""


class _RegressionLoss(TokenRegression):
    def __init__(self, config: RegressionLossConfig) -> None:
        self.config = config

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        if not self.config.normalize_targets:
            return features
        return F.layer_norm(features, features.shape[-1:])


class SmoothL1Loss(_RegressionLoss):
    """Smooth L1 with beta 1, averaged over all elements (the official code)."""

    def distance(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(pred, tgt, beta=1.0)


class L2Loss(_RegressionLoss):
    """Mean squared error (the paper's equation 1, averaged)."""

    def distance(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred, tgt)
