"""AdamW and the official I-JEPA schedules: warmup + cosine lr, cosine weight decay.

Schedules are pure functions of the step, so a checkpoint needs only the step
to restore them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from jepakit.recipe import OptimConfig, TrainConfig


def param_groups(modules: Iterable[nn.Module]) -> list[dict]:
    """Weight decay on weight matrices only: biases and 1-D parameters (norms,
    tokens) get none, as in the official code."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "apply_wd": True},
        {"params": no_decay, "apply_wd": False, "weight_decay": 0.0},
    ]


def build_optimizer(modules: Iterable[nn.Module], config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with one fused kernel on CUDA (all parameters in one launch) and the
    multi-tensor ``foreach`` path elsewhere; both compute the same update."""
    groups = param_groups(modules)
    on_cuda = any(p.is_cuda for g in groups for p in g["params"])
    kernel = {"fused": True} if on_cuda else {"foreach": True}
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=config.betas, eps=config.eps,
        weight_decay=config.weight_decay, **kernel,
    )


class Schedules:
    """Learning rate and weight decay as functions of the 0-based step."""

    def __init__(self, optim: OptimConfig, train: TrainConfig) -> None:
        self.cfg = optim
        self.total = train.total_steps
        if optim.warmup_steps is not None:
            self.warmup = optim.warmup_steps
        elif optim.warmup_epochs is not None:
            per_epoch = train.steps_per_epoch
            if per_epoch is None:
                raise ValueError("optim.warmup_epochs needs train.samples_per_epoch")
            self.warmup = round(optim.warmup_epochs * per_epoch)
        else:
            self.warmup = 0
        self.warmup = min(self.warmup, self.total)

    def lr(self, step: int) -> float:
        c = self.cfg
        if step < self.warmup:
            return c.start_lr + (c.lr - c.start_lr) * step / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return c.final_lr + (c.lr - c.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def weight_decay(self, step: int) -> float:
        c = self.cfg
        progress = min(1.0, step / max(1, self.total))
        return c.final_weight_decay + (c.weight_decay - c.final_weight_decay) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> tuple[float, float]:
        lr, wd = self.lr(step), self.weight_decay(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
            if group.get("apply_wd", True):
                group["weight_decay"] = wd
        return lr, wd
