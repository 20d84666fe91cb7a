"""The I-JEPA plugin set (Assran et al., CVPR 2023, arXiv 2301.08243).

Registered through the ``jepakit`` entry-point group exactly as a third-party
plugin would be: the engine never imports this package by name.
"""

from __future__ import annotations

import jepakit

from .ema import EMAConfig, EMATargetUpdater
from .losses import L2Loss, RegressionLossConfig, SmoothL1Loss
from .multiblock import MultiBlockConfig, MultiBlockMasker
from .predictor import Predictor, PredictorConfig
from .vit import VisionTransformer, ViTConfig


@jepakit.hookimpl
def jepakit_encoders() -> list[jepakit.Component]:
    return [jepakit.Component("vit", VisionTransformer, ViTConfig)]


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return [jepakit.Component("multiblock", MultiBlockMasker, MultiBlockConfig)]


@jepakit.hookimpl
def jepakit_predictors() -> list[jepakit.Component]:
    return [jepakit.Component("ijepa", Predictor, PredictorConfig)]


@jepakit.hookimpl
def jepakit_target_updaters() -> list[jepakit.Component]:
    return [jepakit.Component("ema", EMATargetUpdater, EMAConfig)]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return [
        jepakit.Component("smooth_l1", SmoothL1Loss, RegressionLossConfig),
        jepakit.Component("l2", L2Loss, RegressionLossConfig),
    ]
