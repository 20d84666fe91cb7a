"""The LeJEPA plugin set (Balestriero and LeCun, arXiv 2511.08544): SIGReg, the
invariance term, their convex combination, and the MLP projector. No teacher, no
EMA, no stop-gradient.
"""

from __future__ import annotations

from .losses import (
    InvarianceConfig,
    InvarianceLoss,
    LeJEPALoss,
    LeJEPALossConfig,
    SIGRegConfig,
    SIGRegLoss,
)
from .projector import MLPProjector, ProjectorConfig
from .sigreg import epps_pulley, random_directions

__all__ = [
    "InvarianceConfig", "InvarianceLoss", "LeJEPALoss", "LeJEPALossConfig", "MLPProjector",
    "ProjectorConfig", "SIGRegConfig", "SIGRegLoss", "epps_pulley", "random_directions",
]
