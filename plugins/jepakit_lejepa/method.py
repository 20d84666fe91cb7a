"""LeJEPA's training step as a registered method (Balestriero and LeCun, 2025,
arXiv 2511.08544): several views of each image go through one encoder (no teacher,
no stop-gradient, no predictor), are pooled, optionally projected, and the loss
terms see the per-view embeddings: invariance to the global views' mean plus SIGReg,
which pushes the embeddings towards an isotropic Gaussian and so rules out collapse.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from attrs import validators as v
from torch import nn

from jepakit.contracts import StepOutputs, StepResult
from jepakit.errors import ConfigError


@attrs.define
class LeJEPAConfig:
    global_views: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """How many leading views are global (the invariance centre); default: the views
    of the first view's size (the recipe's first ``views`` group)."""


class LeJEPA(nn.Module):
    """Fits :class:`jepakit.contracts.Method`."""

    components = {"encoder": True, "projector": False, "loss": True}

    def __init__(self, config: LeJEPAConfig, *, seed: int = 0, encoder: nn.Module,
                 loss: Any, projector: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.encoder = encoder
        self.projector = projector
        self.loss_fn = loss

    def trainable(self) -> list[nn.Module]:
        return [self.encoder] + ([self.projector] if self.projector is not None else [])

    def embed(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Pooled backbone embeddings [B, D] per view; views of one size share one
        encoder call (the 2 globals, then the locals)."""
        out: list[torch.Tensor | None] = [None] * len(views)
        sizes: dict[tuple[int, ...], list[int]] = {}
        for i, view in enumerate(views):
            sizes.setdefault(tuple(view.shape[1:]), []).append(i)
        for indices in sizes.values():
            tokens = self.encoder(torch.cat([views[i] for i in indices]))
            for i, pooled in zip(indices, tokens.mean(1).chunk(len(indices)), strict=True):
                out[i] = pooled
        return [e for e in out if e is not None]

    def num_global(self, views: list[torch.Tensor]) -> int:
        if self.config.global_views is not None:
            if self.config.global_views > len(views):
                raise ConfigError(f"method.params.global_views: {self.config.global_views} is "
                                  f"more than the batch's {len(views)} views")
            return self.config.global_views
        first = views[0].shape[1:]
        return sum(1 for view in views if view.shape[1:] == first)

    def forward(self, batch: Any, step: int) -> StepResult:
        views = getattr(batch, "views", None)
        if not views:
            raise ConfigError("method lejepa trains on several views of each image: add a "
                              "'views:' section to the recipe (docs/lejepa.md)")
        embeddings = self.embed(list(views))
        if self.projector is not None:
            embeddings = list(self.projector(torch.cat(embeddings)).chunk(len(embeddings)))
        outputs = StepOutputs(embeddings=embeddings, num_global=self.num_global(list(views)),
                              step=step, seed=self.seed)
        loss, terms = self.loss_fn(outputs)
        return StepResult(loss, terms, outputs)

    def after_optimizer_step(self, step: int) -> None:
        """No teacher: nothing to update."""

    def eval_encoder(self) -> nn.Module:
        return self.encoder

    def log_values(self, step: int) -> dict[str, float]:
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass
