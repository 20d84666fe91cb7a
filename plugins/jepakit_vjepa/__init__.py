"""The V-JEPA plugin set (Bardes et al. 2024, arXiv 2404.08471; V-JEPA 2, Assran et al.
2025, arXiv 2506.09985): video JEPA on (frames, rows, columns) token grids.

Registered through the ``jepakit`` entry-point group exactly as a third-party plugin
would be: the engine never imports this package by name.
"""

from __future__ import annotations

import jepakit

from .masker import MaskConfiguration, VJEPAMultiBlockConfig, VJEPAMultiBlockMasker

__all__ = ["MaskConfiguration", "VJEPAMultiBlockConfig", "VJEPAMultiBlockMasker"]

SMALL_MASKS = {"configurations": [{"num_blocks": 2, "spatial_scale": [0.15, 0.15]},
                                  {"num_blocks": 1, "spatial_scale": [0.5, 0.5]}]}
"""Two small mask configurations, for examples and quick checks."""


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return [jepakit.Component("vjepa_multiblock", VJEPAMultiBlockMasker, VJEPAMultiBlockConfig,
                              example=SMALL_MASKS)]
