"""The V-JEPA plugin set: V-JEPA (Bardes et al. 2024, arXiv 2404.08471, facebookresearch/jepa)
and V-JEPA 2 (Assran et al. 2025, arXiv 2506.09985, facebookresearch/vjepa2) on clips
[B, C, T, H, W], i.e. (frames, rows, columns) token grids.

The ``vit_video`` encoder (tubelets, 3-D sin-cos or 3-D RoPE), the ``vjepa_multiblock``
masker (several mask configurations per batch), the ``vjepa`` predictor (one mask token per
mask configuration), the ``l1`` loss, the ``vjepa`` method and the ``vjepa2`` checkpoint
converter. The target updater is I-JEPA's ``ema``. Registered through the ``jepakit``
entry-point group like any third-party plugin; docs/vjepa.md.
"""

from __future__ import annotations

import jepakit

from .losses import L1Loss, L1LossConfig
from .masker import MaskConfiguration, VJEPAMultiBlockConfig, VJEPAMultiBlockMasker
from .method import VJEPA, VJEPAConfig
from .official import VJEPA2ConvertConfig, convert_vjepa2
from .predictor import VJEPAPredictor, VJEPAPredictorConfig
from .vit import VideoVisionTransformer, VideoViTConfig

SMALL_VIDEO_VIT = {"size": "tiny", "image_size": 32, "patch_size": 8, "num_frames": 4,
                   "tubelet": 2, "embed_dim": 32, "depth": 2, "num_heads": 2}
"""A small video ViT for the conformance kit: a (2, 4, 4) token grid."""
SMALL_PREDICTOR = {"embed_dim": 16, "depth": 1, "num_heads": 2, "num_mask_tokens": 1}
"""One mask token: the kit's single predictor call must reach every parameter."""
SMALL_MASKS = {"configurations": [{"num_blocks": 2, "spatial_scale": [0.15, 0.15]},
                                  {"num_blocks": 1, "spatial_scale": [0.5, 0.5]}]}
"""Two small mask configurations, for examples and quick checks."""
EXAMPLE_RECIPE = {
    "encoder": {"name": "vit_video", "params": SMALL_VIDEO_VIT},
    "masker": {"name": "vjepa_multiblock"},
    "predictor": {"name": "vjepa", "params": {**SMALL_PREDICTOR, "num_mask_tokens": 2}},
    "target_updater": {"name": "ema"},
    "loss": {"name": "l1"},
}
"""The component sections of a small V-JEPA recipe, for the conformance kit."""

COMPONENTS: dict[str, list[jepakit.Component]] = {
    "method": [jepakit.Component("vjepa", VJEPA, VJEPAConfig, example=EXAMPLE_RECIPE)],
    "encoder": [jepakit.Component("vit_video", VideoVisionTransformer, VideoViTConfig,
                                  example=SMALL_VIDEO_VIT)],
    "predictor": [jepakit.Component("vjepa", VJEPAPredictor, VJEPAPredictorConfig,
                                    example=SMALL_PREDICTOR)],
    "loss": [jepakit.Component("l1", L1Loss, L1LossConfig)],
    "masker": [jepakit.Component("vjepa_multiblock", VJEPAMultiBlockMasker,
                                 VJEPAMultiBlockConfig, example=SMALL_MASKS)],
    "converter": [jepakit.Component("vjepa2", convert_vjepa2, VJEPA2ConvertConfig)],
}
"""What this plugin set registers, by kind: one line per component."""


@jepakit.hookimpl
def jepakit_methods() -> list[jepakit.Component]:
    return COMPONENTS["method"]


@jepakit.hookimpl
def jepakit_encoders() -> list[jepakit.Component]:
    return COMPONENTS["encoder"]


@jepakit.hookimpl
def jepakit_predictors() -> list[jepakit.Component]:
    return COMPONENTS["predictor"]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return COMPONENTS["loss"]


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return COMPONENTS["masker"]


@jepakit.hookimpl
def jepakit_converters() -> list[jepakit.Component]:
    return COMPONENTS["converter"]


__all__ = [
    "COMPONENTS", "L1Loss", "L1LossConfig", "MaskConfiguration", "VJEPA",
    "VJEPA2ConvertConfig", "VJEPAConfig", "VJEPAMultiBlockConfig", "VJEPAMultiBlockMasker",
    "VJEPAPredictor", "VJEPAPredictorConfig", "VideoViTConfig", "VideoVisionTransformer",
    "convert_vjepa2",
]
