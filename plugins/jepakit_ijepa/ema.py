"""Exponential-moving-average target encoder (I-JEPA, following BYOL).

Momentum rises linearly from ``start`` (0.996) to ``end`` (1.0) over training.
The copy and its update (one fused ``_foreach_lerp_`` over all parameters instead
of a Python loop per parameter) are ``jepakit.targets.EMATeacher``'s.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

from jepakit.targets import EMATeacher


@attrs.define
class EMAConfig:
    start: float = attrs.field(default=0.996, validator=[v.ge(0), v.le(1)])
    end: float = attrs.field(default=1.0, validator=[v.ge(0), v.le(1)])


class EMATargetUpdater(EMATeacher):
    def __init__(self, config: EMAConfig, *, total_steps: int) -> None:
        super().__init__(total_steps)
        self.config = config

    def momentum(self, step: int) -> float:
        """Momentum used for the update after optimizer step ``step`` (0-based)."""
        frac = min(1.0, step / self.total_steps)
        return self.config.start + (self.config.end - self.config.start) * frac
