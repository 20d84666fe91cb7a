"""data2vec's regression loss (Baevski et al. 2022, arXiv 2202.03555, section 3.4).

The targets arrive as the teacher's averaged top-K layers (see ``targets.py``);
``prepare_targets`` applies data2vec's final normalisation of that average over
the full image, before the engine gathers the masked positions. The distance is
smooth L1 with a ``beta`` (data2vec v1) or plain L2 (data2vec 2.0), averaged
over all elements.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v

from jepakit.losses import TokenRegression

from .targets import Norm, normalise


@attrs.define
class Data2VecLossConfig:
    distance: Literal["smooth_l1", "l2"] = "smooth_l1"
    beta: float = attrs.field(default=2.0, validator=v.gt(0))
    """Smooth L1's switch point from squared to absolute error."""
    target_norm: Norm = "layer"
    """Normalisation of the averaged target, per token (``layer``) or per channel over
    the image's tokens (``instance``)."""


class Data2VecLoss(TokenRegression):
    """Fits :class:`jepakit.contracts.Loss`."""

    def __init__(self, config: Data2VecLossConfig) -> None:
        self.config = config

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        return normalise(features, self.config.target_norm)

    def distance(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        if self.config.distance == "l2":
            return F.mse_loss(pred, tgt)
        return F.smooth_l1_loss(pred, tgt, beta=self.config.beta)
