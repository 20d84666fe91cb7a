"""The ablation recipes (I-JEPA Tables 6, 8, 9, 10 on the tiny recipe's shape):
each loads, its masker draws on the recipe's grid, and one training step runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from jepakit.recipe import load_recipe
from jepakit.testing import check_case

ABLATIONS = sorted((Path(__file__).resolve().parents[3] / "recipes" / "ablations").glob("table*.yaml"))


def test_every_table_is_there():
    names = {p.stem for p in ABLATIONS}
    assert {"table6_multiblock", "table6_rasterized", "table6_block", "table6_random"} <= names
    assert sum(n.startswith("table8_") for n in names) == 6
    assert sum(n.startswith("table9_") for n in names) == 4
    assert sum(n.startswith("table10_") for n in names) == 4


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_recipe_loads_and_its_masks_conform(path, registry):
    recipe = load_recipe(path, registry=registry)
    assert recipe.name == f"ablation_{path.stem}"
    baseline = load_recipe(path.parent.parent / "ijepa_tiny.yaml", registry=registry)
    for section in ("encoder", "predictor", "target_updater", "loss", "data", "optim", "train"):
        assert getattr(recipe, section) == getattr(baseline, section), section  # only the masker differs
    masker = registry.create("masker", recipe.masker.name, recipe.masker.params)
    check_case(masker, recipe.train.batch_size, (8, 8), seed=0)


@pytest.mark.parametrize("strategy", ["rasterized", "block", "random"])
def test_one_training_step_with_each_alternative(strategy, registry):
    from jepakit.data.loader import Batch
    from jepakit.method import build_method

    path = next(p for p in ABLATIONS if p.stem == f"table6_{strategy}")
    recipe = load_recipe(path, registry=registry)
    torch.manual_seed(0)
    model, masker = build_method(recipe, registry)
    masks = masker(4, model.encoder.patch_grid, torch.Generator().manual_seed(0))
    images = torch.randn(4, 3, *model.encoder.image_size)
    loss = model(Batch(images=images, labels=None, masks=masks), 0).loss
    loss.backward()
    value = float(loss.detach())
    assert math.isfinite(value) and value > 0
    assert next(model.encoder.parameters()).grad is not None
