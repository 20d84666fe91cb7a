"""Exponential-moving-average target encoder (I-JEPA, following BYOL).

Momentum rises linearly from ``start`` (0.996) to ``end`` (1.0) over training.
The update is one fused ``_foreach_lerp_`` over all parameters instead of a
Python loop per parameter.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
from attrs import validators as v
from torch import nn

from jepakit.ops import ema_update_


@attrs.define
class EMAConfig:
    start: float = attrs.field(default=0.996, validator=[v.ge(0), v.le(1)])
    end: float = attrs.field(default=1.0, validator=[v.ge(0), v.le(1)])


class EMATargetUpdater:
    def __init__(self, config: EMAConfig, *, total_steps: int) -> None:
        self.config = config
        self.total_steps = max(1, total_steps)

    def momentum(self, step: int) -> float:
        """Momentum used for the update after optimizer step ``step`` (0-based)."""
        frac = min(1.0, step / self.total_steps)
        return self.config.start + (self.config.end - self.config.start) * frac

    def build(self, online: nn.Module) -> nn.Module:
        target = copy.deepcopy(online)
        for p in target.parameters():
            p.requires_grad_(False)
        return target

    def update(self, online: nn.Module, target: nn.Module, step: int) -> None:
        ema_update_(target, online, self.momentum(step))

    def state_dict(self) -> dict[str, Any]:
        return {"total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total_steps = int(state["total_steps"])
