"""The I-JEPA plugin set (Assran et al., CVPR 2023, arXiv 2301.08243).

Registered through the ``jepakit`` entry-point group exactly as a third-party
plugin would be: the engine never imports this package by name.
"""

from __future__ import annotations

import jepakit

from .ema import EMAConfig, EMATargetUpdater
from .losses import L2Loss, RegressionLossConfig, SmoothL1Loss
from .method import IJEPA, IJEPAConfig
from .multiblock import MultiBlockConfig, MultiBlockMasker
from .official import OfficialConvertConfig, convert_official
from .predictor import Predictor, PredictorConfig
from .vit import VisionTransformer, ViTConfig

SMALL_VIT = {"image_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}
"""A small ViT for the conformance kit (``jepakit/conformance.py``)."""
EXAMPLE_RECIPE = {
    "encoder": {"name": "vit", "params": SMALL_VIT},
    "masker": {"name": "multiblock", "params": {"num_targets": 2, "min_keep": 2}},
    "predictor": {"name": "ijepa", "params": {"embed_dim": 16, "depth": 1, "num_heads": 2}},
    "target_updater": {"name": "ema"},
    "loss": {"name": "smooth_l1"},
}
"""The component sections of a small I-JEPA recipe, for the conformance kit."""


@jepakit.hookimpl
def jepakit_methods() -> list[jepakit.Component]:
    return [jepakit.Component("ijepa", IJEPA, IJEPAConfig, example=EXAMPLE_RECIPE)]


@jepakit.hookimpl
def jepakit_converters() -> list[jepakit.Component]:
    """The official I-JEPA training checkpoint (Assran et al. 2023) -> jepakit weights."""
    return [jepakit.Component("ijepa-official", convert_official, OfficialConvertConfig)]


@jepakit.hookimpl
def jepakit_encoders() -> list[jepakit.Component]:
    return [jepakit.Component("vit", VisionTransformer, ViTConfig, example=SMALL_VIT)]


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return [jepakit.Component("multiblock", MultiBlockMasker, MultiBlockConfig)]


@jepakit.hookimpl
def jepakit_predictors() -> list[jepakit.Component]:
    return [jepakit.Component("ijepa", Predictor, PredictorConfig,
                              example={"embed_dim": 16, "depth": 1, "num_heads": 2})]


@jepakit.hookimpl
def jepakit_target_updaters() -> list[jepakit.Component]:
    return [jepakit.Component("ema", EMATargetUpdater, EMAConfig)]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return [
        jepakit.Component("smooth_l1", SmoothL1Loss, RegressionLossConfig),
        jepakit.Component("l2", L2Loss, RegressionLossConfig),
    ]
