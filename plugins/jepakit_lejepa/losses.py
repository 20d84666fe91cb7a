"""LeJEPA's loss terms (Balestriero and LeCun, arXiv 2511.08544, section 5, algorithm 1).

Each loss names the step outputs it reads in ``inputs`` and returns a scalar or a
dict of named terms (its value is their sum; each term is logged on its own):

* :class:`SIGRegLoss`: the sliced Epps-Pulley statistic of each view's embeddings,
  averaged over views.
* :class:`InvarianceLoss`: how far every view's embedding lies from the mean of the
  global views' embeddings.
* :class:`LeJEPALoss`: the paper's convex combination
  ``lambda * SIGReg + (1 - lambda) * invariance`` (not ``invariance + lambda * SIGReg``,
  which changes what a given lambda means).

Embeddings are the projector's outputs, one [B, D] tensor per view, global views first.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import torch
from attrs import validators as v

from .sigreg import epps_pulley, random_directions

_STREAM = 0x51_6E_E6  # keeps these directions apart from other (seed, step) streams


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, step): the same on every rank, new
    every optimizer step, and the same again when a run resumes at that step."""
    entropy = np.random.SeedSequence([seed % 2**64, step % 2**64, _STREAM]).generate_state(2)
    return torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))


@attrs.define
class SIGRegConfig:
    num_directions: int = attrs.field(default=1024, validator=v.gt(0))
    """Random 1-D projections per step (the paper uses 256 to 1024; 4096 in ablations)."""
    knots: int = attrs.field(default=17, validator=v.ge(2))
    """Quadrature points on [0, t_max]."""
    t_max: float = attrs.field(default=3.0, validator=v.gt(0))
    """Upper end of the integration grid; exp(-t^2/2) makes larger t irrelevant."""


class SIGRegLoss:
    """SIGReg computed per view and averaged over views.

    Per view, not over all views flattened into one [V*B, D] sample (public code does
    both): the test assumes independent samples, and the V views of one image are not
    (the invariance term pulls them together), so flattening would count each image V
    times in N; it would also test the mixture of global- and local-crop embeddings
    instead of each. The paper's algorithm 1 takes the statistic per view.
    Directions are redrawn every step from ``(seed, step)`` and shared by all views.
    A view given as tokens [B, K, D] (SIGReg added to a patch-level JEPA) is tested as
    its B * K token embeddings.
    """

    inputs: tuple[str, ...] = ("embeddings", "step", "seed")

    def __init__(self, config: SIGRegConfig) -> None:
        self.config = config

    def directions(self, dim: int, step: int, seed: int, device: torch.device) -> torch.Tensor:
        return random_directions(dim, self.config.num_directions, step_generator(seed, step),
                                 device=device)

    def __call__(self, embeddings: Sequence[torch.Tensor], step: int, seed: int) -> torch.Tensor:
        if not embeddings:
            raise ValueError("SIGReg needs at least one view's embeddings")
        first = embeddings[0]
        directions = self.directions(first.shape[-1], step, seed, first.device)
        stats = [epps_pulley(z.reshape(-1, z.shape[-1]), directions, self.config.knots,
                             self.config.t_max) for z in embeddings]
        return torch.stack(stats).mean()


@attrs.define
class InvarianceConfig:
    pass


class InvarianceLoss:
    """Mean over all views (global ones included), samples and dimensions of the squared
    difference between a view's embedding and the mean of the global views' embeddings.

    Averaged over dimensions, as the paper's algorithm 1 does (``.square().mean()``):
    the per-sample squared distance divided by D. A sum over dimensions would scale the
    term by D (128 for the paper's projector) and shift what a given lambda means."""

    inputs: tuple[str, ...] = ("embeddings", "num_global")

    def __init__(self, config: InvarianceConfig | None = None) -> None:
        self.config = config or InvarianceConfig()

    def __call__(self, embeddings: Sequence[torch.Tensor], num_global: int) -> torch.Tensor:
        if not 1 <= num_global <= len(embeddings):
            raise ValueError(f"num_global={num_global} for {len(embeddings)} view(s)")
        z = torch.stack([e.float() for e in embeddings])  # [V, B, D]
        center = z[:num_global].mean(0)
        return (z - center).square().mean()


@attrs.define
class LeJEPALossConfig(SIGRegConfig):
    lambda_: float = attrs.field(default=0.05, validator=[v.ge(0), v.le(1)])
    """SIGReg's share of the loss: 0.05 on ImageNet-1k, 0.02 on Imagenette in the paper."""


class LeJEPALoss:
    """``{"sigreg": lambda * SIGReg, "invariance": (1 - lambda) * invariance}``."""

    inputs: tuple[str, ...] = ("embeddings", "num_global", "step", "seed")

    def __init__(self, config: LeJEPALossConfig) -> None:
        self.config = config
        self.sigreg = SIGRegLoss(SIGRegConfig(config.num_directions, config.knots, config.t_max))
        self.invariance = InvarianceLoss()

    def __call__(self, embeddings: Sequence[torch.Tensor], num_global: int, step: int,
                 seed: int) -> dict[str, torch.Tensor]:
        lam = self.config.lambda_
        return {"sigreg": lam * self.sigreg(embeddings, step, seed),
                "invariance": (1 - lam) * self.invariance(embeddings, num_global)}
