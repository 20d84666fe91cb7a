"""data2vec's teacher: an EMA copy of the encoder whose output is the average of
its top-K layer outputs (Baevski et al. 2022, arXiv 2202.03555, section 3.3).

Why a target updater: the engine only ever calls ``target_encoder(images)`` and
gives the result to the loss. The updater owns that module, so it can make the
module answer with what data2vec regresses, with no engine change:

- the copy gets forward hooks on its last ``top_k`` blocks (on each block's MLP
  for ``layer_output: ffn``, data2vec's "output of the feed-forward network
  before the last residual connection"; on the whole block for ``block``);
- a hook on the copy itself replaces its output by the average of those layers,
  each normalised first (``instance``: over the tokens, per channel, as data2vec
  does for speech and its later versions; ``layer``: over the channels of each
  token, the parameter-free layer norm its paper names for vision; or ``none``).

Hooks are not part of the state dict: checkpoints hold a plain encoder's weights,
and an encoder rebuilt from them (``jepakit export``, evaluation) gives its last
layer as usual. The encoder must expose its blocks as ``encoder.blocks`` (the
shipped ``vit`` and ``timm`` encoders do). Prefix tokens some timm models carry
(class token, registers) come first in each block output and are cut off.

The EMA momentum rises linearly from ``start`` to ``end`` over the first
``anneal_fraction`` of training and then stays at ``end``, as data2vec anneals
its teacher decay.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from torch import nn

from jepakit.errors import ConfigError
from jepakit.targets import EMATeacher

Norm = Literal["instance", "layer", "none"]


@attrs.define
class TopKTargetsConfig:
    """data2vec's ViT-B image settings as we read the paper: K=6, decay 0.9998 -> 0.9999."""

    top_k: int = attrs.field(default=6, validator=v.gt(0))
    """Number of last layers averaged into the target."""
    layer_output: Literal["ffn", "block"] = "ffn"
    """Which output of each layer: the MLP branch before its residual, or the block output."""
    layer_norm: Norm = "instance"
    """Normalisation of each layer before averaging."""
    start: float = attrs.field(default=0.9998, validator=[v.ge(0), v.le(1)])
    end: float = attrs.field(default=0.9999, validator=[v.ge(0), v.le(1)])
    anneal_fraction: float = attrs.field(default=1.0, validator=[v.gt(0), v.le(1)])
    """Fraction of training over which the momentum goes from ``start`` to ``end``."""


def normalise(x: torch.Tensor, how: str) -> torch.Tensor:
    """Parameter-free normalisation of tokens [B, N, D], in fp32."""
    x = x.float()
    if how == "layer":
        return F.layer_norm(x, x.shape[-1:])
    if how == "instance":
        return F.instance_norm(x.transpose(1, 2)).transpose(1, 2)
    return x


class TopKAverage:
    """The hooks: collect the chosen layer outputs during a forward, then replace
    the module's output by their normalised average."""

    def __init__(self, top_k: int, norm: str) -> None:
        self.top_k = top_k
        self.norm = norm
        self.layers: list[torch.Tensor] = []

    def reset(self, module: nn.Module, args: Any) -> None:
        self.layers = []

    def capture(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self.layers.append(output)

    def average(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        layers, self.layers = self.layers, []
        if len(layers) != self.top_k:
            raise RuntimeError(f"data2vec targets: expected {self.top_k} layer outputs, "
                               f"saw {len(layers)} (does the encoder call its blocks once?)")
        n = output.shape[1]  # the encoder's tokens; block outputs may lead with prefix tokens
        total = normalise(layers[0][:, -n:], self.norm)
        for layer in layers[1:]:
            total = total + normalise(layer[:, -n:], self.norm)
        return total / len(layers)


class TopKTargetUpdater(EMATeacher):
    """Fits :class:`jepakit.contracts.TargetUpdater`; ``build`` returns the hooked copy."""

    def __init__(self, config: TopKTargetsConfig, *, total_steps: int) -> None:
        super().__init__(total_steps)
        self.config = config

    def momentum(self, step: int) -> float:
        """Momentum used for the update after optimizer step ``step`` (0-based)."""
        ramp = max(1.0, self.config.anneal_fraction * self.total_steps)
        frac = min(1.0, step / ramp)
        return self.config.start + (self.config.end - self.config.start) * frac

    def build(self, online: nn.Module) -> nn.Module:
        blocks = getattr(online, "blocks", None)
        if not isinstance(blocks, (nn.ModuleList, nn.Sequential)):
            raise ConfigError(f"target_updater data2vec: the encoder ({type(online).__name__}) "
                              "exposes no 'blocks' list to read layer outputs from")
        k = self.config.top_k
        if k > len(blocks):
            raise ConfigError(f"target_updater.params.top_k: {k} is more than the encoder's "
                              f"{len(blocks)} blocks")
        target = super().build(online)
        hooks = TopKAverage(k, self.config.layer_norm)
        for block in list(getattr(target, "blocks"))[-k:]:  # noqa: B009 (checked above)
            where = block if self.config.layer_output == "block" else getattr(block, "mlp", None)
            if not isinstance(where, nn.Module):
                raise ConfigError("target_updater.params.layer_output: ffn needs blocks with an "
                                  f"'mlp' module; {type(block).__name__} has none (use 'block')")
            where.register_forward_hook(hooks.capture)
        target.register_forward_pre_hook(hooks.reset)
        target.register_forward_hook(hooks.average)
        return target
