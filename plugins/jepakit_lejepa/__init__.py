"""The LeJEPA plugin set (Balestriero and LeCun, arXiv 2511.08544): the ``lejepa``
method, SIGReg, the invariance term, their convex combination, the MLP projector, and
a ``shared`` target updater (the target is the online encoder: no teacher, no EMA).

Registered through the ``jepakit`` entry-point group like any third-party plugin.
Its losses read the step outputs they name, so SIGReg also serves other methods:
``recipes/ablations/ijepa_sigreg_noema.yaml`` adds it to I-JEPA by YAML alone.
"""

from __future__ import annotations

import jepakit

from .losses import (
    InvarianceConfig,
    InvarianceLoss,
    LeJEPALoss,
    LeJEPALossConfig,
    SIGRegConfig,
    SIGRegLoss,
)
from .method import LeJEPA, LeJEPAConfig
from .projector import MLPProjector, ProjectorConfig
from .shared_target import SharedTarget, SharedTargetConfig
from .sigreg import epps_pulley, random_directions

SMALL_VIT = {"image_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}
EXAMPLE_RECIPE = {
    "encoder": {"name": "vit", "params": SMALL_VIT},
    "projector": {"name": "mlp", "params": {"hidden_dim": 32, "out_dim": 16}},
    "loss": {"name": "lejepa", "params": {"num_directions": 16}},
}
"""The component sections of a small LeJEPA recipe, for the conformance kit."""


@jepakit.hookimpl
def jepakit_methods() -> list[jepakit.Component]:
    return [jepakit.Component("lejepa", LeJEPA, LeJEPAConfig, example=EXAMPLE_RECIPE)]


@jepakit.hookimpl
def jepakit_losses() -> list[jepakit.Component]:
    return [
        jepakit.Component("sigreg", SIGRegLoss, SIGRegConfig, example={"num_directions": 16}),
        jepakit.Component("invariance", InvarianceLoss, InvarianceConfig),
        jepakit.Component("lejepa", LeJEPALoss, LeJEPALossConfig,
                          example={"num_directions": 16}),
    ]


@jepakit.hookimpl
def jepakit_projectors() -> list[jepakit.Component]:
    return [jepakit.Component("mlp", MLPProjector, ProjectorConfig,
                              example={"hidden_dim": 32, "out_dim": 16})]


@jepakit.hookimpl
def jepakit_target_updaters() -> list[jepakit.Component]:
    return [jepakit.Component("shared", SharedTarget, SharedTargetConfig)]

__all__ = [
    "InvarianceConfig", "InvarianceLoss", "LeJEPA", "LeJEPAConfig", "LeJEPALoss",
    "LeJEPALossConfig", "MLPProjector", "ProjectorConfig", "SIGRegConfig", "SIGRegLoss",
    "SharedTarget", "SharedTargetConfig", "epps_pulley", "random_directions",
]
