"""Model size and FLOPs of one training step, measured without memory on the meta device."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from jepakit.contracts import Masks
from jepakit.data.loader import Batch
from jepakit.method import input_shape, sample_shape


def count_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def mask_sizes(masks: Masks) -> dict[str, int]:
    return {
        "context_tokens": sum(int(m.shape[1]) for m in masks.context),
        "target_tokens": sum(int(m.shape[1]) for m in masks.targets),
    }


def train_step_flops(model: Any, masks: Masks | None, views: Any = None) -> int:
    """FLOPs per image (per clip, for a video encoder) of one training step (target forward, context forward and
    backward, predictor forward and backward) for these mask sizes.

    Counted by torch's FlopCounterMode on the meta device for one image, so it is
    exact for the actual components whatever their architecture.
    """
    masks_1 = None if masks is None else Masks(
        context=[m[:1].to("meta") for m in masks.context],
        targets=[m[:1].to("meta") for m in masks.targets])
    c, h, w = input_shape(model)
    images = torch.zeros(1, *sample_shape(getattr(model, "encoder")), device="meta")  # noqa: B009
    view_list = None
    if views:  # the recipe's view groups: one image per view, at each group's size
        view_list = [torch.zeros(1, c, g.size, g.size, device="meta")
                     for g in views for _ in range(g.count)]
        images = view_list[0]
    with FlopCounterMode(display=False) as counter:
        model(Batch(images=images, labels=None, masks=masks_1, views=view_list), 0).loss.backward()
    return int(counter.get_total_flops())
