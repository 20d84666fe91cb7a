"""What a recipe builds, without data or memory: parameter counts and FLOPs."""

from __future__ import annotations

from typing import Any

import yaml

from jepakit.flops import count_params, mask_sizes, train_step_flops
from jepakit.kinds import RECIPE_KINDS
from jepakit.maskcheck import check_draw
from jepakit.method import build_method
from jepakit.recipe import Recipe, dump_recipe, load_recipe


def without_recompute(recipe: Recipe, registry: Any) -> Recipe:
    """The recipe with every component's ``activation_checkpointing`` off: the forward
    passes that checkpointing repeats in the backward are not model FLOPs (MFU counts
    the model's arithmetic, not the recomputation that buys memory)."""
    extra = [f"{kind.section}.params.activation_checkpointing=false" for kind in RECIPE_KINDS
             if not kind.many and recipe.has(kind.name)
             and recipe.spec(kind.name).params.get("activation_checkpointing")]
    if not extra:
        return recipe
    return load_recipe(yaml.safe_load(dump_recipe(recipe)), extra, registry)


SAMPLE_BATCH = 32
"""Images per batch of the masks whose sizes the FLOPs are counted for."""


def describe(recipe: Recipe, registry: Any) -> dict[str, Any]:
    """Build the models on the meta device and count parameters and step FLOPs
    (per image, for masks drawn from the recipe's masker; recomputation not counted)."""
    model, masker = build_method(without_recompute(recipe, registry), registry, device="meta")
    grid = tuple(model.encoder.patch_grid)
    masks = None if masker is None else check_draw(  # a broken masker stops --dry-run too
        masker, grid, SAMPLE_BATCH, recipe.train.seed, recipe.spec("masker").name)
    flops = train_step_flops(model, masks, recipe.views)
    return {
        **{f"{name}_params": count_params(child) for name, child in model.named_children()
           if name != "target_encoder"},
        "patch_grid": list(grid),
        "num_frames": getattr(model.encoder, "num_frames", None),
        **(mask_sizes(masks) if masks is not None else {}),
        "train_flops_per_image": flops,
        "train_flops_per_step": flops * recipe.train.batch_size,
        "total_steps": recipe.train.total_steps,
    }


def format_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))
