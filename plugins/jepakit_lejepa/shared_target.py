"""A target that is the online encoder itself: no teacher copy, no EMA.

LeJEPA (arXiv 2511.08544) needs none: SIGReg, not a slow teacher, prevents collapse.
With it any target-based method (I-JEPA) can drop its EMA and try SIGReg instead, by
recipe (``recipes/ablations/ijepa_sigreg_noema.yaml``).
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import nn


@attrs.define
class SharedTargetConfig:
    stop_gradient: bool = False
    """Compute targets without gradients (SimSiam-style) instead of letting them flow."""


class SharedTarget:
    """Fits :class:`jepakit.contracts.TargetUpdater`: ``build`` returns the online module."""

    def __init__(self, config: SharedTargetConfig, *, total_steps: int) -> None:
        self.config = config
        self.detach_targets = config.stop_gradient

    def build(self, online: nn.Module) -> nn.Module:
        return online

    def update(self, online: nn.Module, target: nn.Module, step: int) -> None:
        """Nothing to do: the target is the online encoder."""

    def momentum(self, step: int) -> float:
        return 0.0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
