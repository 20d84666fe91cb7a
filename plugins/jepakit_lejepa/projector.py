"""LeJEPA's projector: the MLP between the backbone's pooled embedding and the loss
(Balestriero and LeCun, arXiv 2511.08544, section 6: 3 linear layers with BatchNorm,
to 128 dimensions). SIGReg and the invariance term act on its outputs; downstream
probes read the backbone, before it.
"""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v
from torch import nn


@attrs.define
class ProjectorConfig:
    hidden_dim: int = attrs.field(default=2048, validator=v.gt(0))
    out_dim: int = attrs.field(default=128, validator=v.gt(0))


class MLPProjector(nn.Module):
    """``[B, embed_dim] -> [B, out_dim]``: Linear, BatchNorm1d, GELU, Linear, BatchNorm1d,
    GELU, Linear. The two hidden linears have no bias: a BatchNorm right after removes
    any constant shift, so a bias there would never get a gradient.

    BatchNorm normalises over the batch it is given: call it once on all views
    concatenated or per view, as the method decides (the statistics differ)."""

    def __init__(self, config: ProjectorConfig, *, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = embed_dim
        self.out_dim = config.out_dim
        hidden = config.hidden_dim
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.GELU(),
            nn.Linear(hidden, hidden, bias=False), nn.BatchNorm1d(hidden), nn.GELU(),
            nn.Linear(hidden, config.out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.embed_dim:
            raise ValueError(f"projector expects [B, {self.embed_dim}], got {list(x.shape)}")
        return self.net(x)
