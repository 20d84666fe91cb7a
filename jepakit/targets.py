"""Base of the target updaters that keep an exponential-moving-average teacher (BYOL,
I-JEPA, data2vec): a frozen copy of the online encoder, moved towards it after every
optimizer step by one fused update (``jepakit.ops.ema_update_``). Subclasses give the
momentum schedule (and may change what the copy answers, as data2vec's does)."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from jepakit.ops import ema_update_


class EMATeacher:
    """Fits :class:`jepakit.contracts.TargetUpdater`, except ``momentum``."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = max(1, total_steps)

    def momentum(self, step: int) -> float:
        raise NotImplementedError

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
