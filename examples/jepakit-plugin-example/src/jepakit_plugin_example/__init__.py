"""jepakit-plugin-example: a third-party plugin package for jepakit.

It registers two components through the ``jepakit`` entry-point group (see
``pyproject.toml``), exactly as jepakit's own plugin sets do:

    masker  lines    targets are whole rows or columns of patches
    loss    cosine   one minus the cosine similarity of prediction and target

Recipes name them like any other component:
``masker: {name: lines}``, ``loss: {name: cosine}``.
"""

from __future__ import annotations

import jepakit

from .cosine import CosineLoss, CosineLossConfig
from .lines import LinesConfig, LinesMasker

__all__ = ["CosineLoss", "CosineLossConfig", "LinesConfig", "LinesMasker"]


@jepakit.hookimpl
def jepakit_maskers() -> list[jepakit.Component]:
    return [jepakit.Component("lines", LinesMasker, LinesConfig)]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return [jepakit.Component("cosine", CosineLoss, CosineLossConfig)]
