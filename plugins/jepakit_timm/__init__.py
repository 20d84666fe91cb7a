"""timm backbones as jepakit encoders: ``encoder: {name: timm, params: {model: vit_small_patch16_224}}``.

Any model of timm's VisionTransformer family (Dosovitskiy et al. 2021,
arXiv 2010.11929, as implemented in timm by Wightman) is wrapped to the encoder
contract: kept-patch indices in, patch tokens out, ``patch_grid`` exposed.
Registered through the ``jepakit`` entry-point group like any other plugin; timm
itself is imported only when an encoder is built.
"""

from __future__ import annotations

import jepakit

from .encoder import TimmEncoder, TimmEncoderConfig

__all__ = ["TimmEncoder", "TimmEncoderConfig"]


@jepakit.hookimpl
def jepakit_encoders() -> list[jepakit.Component]:
    return [jepakit.Component("timm", TimmEncoder, TimmEncoderConfig, example={
        "image_size": 32, "patch_size": 8,
        "kwargs": {"depth": 2, "embed_dim": 32, "num_heads": 2}})]
