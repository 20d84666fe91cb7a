"""The paper's alternative maskers, for ablations (I-JEPA, Assran et al. 2023,
arXiv 2301.08243, Table 6 and section 6), plus BEiT's blockwise masking
(Bao et al. 2021, arXiv 2106.08254).

    random      MAE-style random token masking (He et al. 2021)
    block       one large target block, the context is the complement
    rasterized  one quadrant as context, the other quadrants as targets
    blockwise   BEiT's union of random blocks as the target

Registered through the ``jepakit`` entry-point group like any third-party plugin;
use them from a recipe by name: ``masker: {name: random, params: {mask_ratio: 0.6}}``.
"""

from __future__ import annotations

import jepakit

from .block import BlockConfig, BlockMasker
from .blockwise import BlockwiseConfig, BlockwiseMasker
from .random_tokens import RandomConfig, RandomMasker
from .rasterized import RasterizedConfig, RasterizedMasker

__all__ = [
    "BlockConfig",
    "BlockMasker",
    "BlockwiseConfig",
    "BlockwiseMasker",
    "RandomConfig",
    "RandomMasker",
    "RasterizedConfig",
    "RasterizedMasker",
]


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return [
        jepakit.Component("random", RandomMasker, RandomConfig),
        jepakit.Component("block", BlockMasker, BlockConfig),
        jepakit.Component("rasterized", RasterizedMasker, RasterizedConfig),
        jepakit.Component("blockwise", BlockwiseMasker, BlockwiseConfig),
    ]
