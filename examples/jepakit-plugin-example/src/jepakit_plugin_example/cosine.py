"""Cosine loss: one minus the cosine similarity of each predicted and target token.

Why: it ignores the scale of the predictions, as BYOL's normalised regression
does (Grill et al. 2020, arXiv 2006.07733: 2 - 2 cos, the same minimiser); the
targets may still be layer-normed first, as I-JEPA does.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
import torch.nn.functional as F


@attrs.define
class CosineLossConfig:
    normalize_targets: bool = True
    """Layer-norm the target features (no affine) over the full image first."""


class CosineLoss:
    """Fits :class:`jepakit.contracts.Loss`: a scalar in [0, 2]."""

    def __init__(self, config: CosineLossConfig) -> None:
        self.config = config

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        if not self.config.normalize_targets:
            return features
        return F.layer_norm(features, features.shape[-1:])

    def __call__(self, predictions: Sequence[torch.Tensor],
                 targets: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
        pred = torch.cat([p.reshape(-1, p.shape[-1]) for p in predictions]).float()
        tgt = torch.cat([t.reshape(-1, t.shape[-1]) for t in targets]).float()
        return (1 - F.cosine_similarity(pred, tgt, dim=-1)).mean()
