"""The shipped V-JEPA recipes load, round-trip, dry-run, and carry the papers' values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jepakit.cli import main
from jepakit.recipe import dump_recipe, load_recipe

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "recipes" / "vjepa").glob("*.yaml"))


def test_the_four_recipes_are_there():
    assert {p.stem for p in RECIPES} >= {"vjepa_tiny", "vjepa_moving_fmnist", "vjepa_vitl16",
                                         "vjepa2_vitl16_256px_16f"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_round_trips_and_dry_runs(path, capsys):
    recipe = load_recipe(path)
    assert recipe.spec("method").name == "vjepa"
    assert load_recipe(yaml.safe_load(dump_recipe(recipe))) == recipe
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "FLOP/clip" in out and "patch grid" in out


def test_vjepa2_recipe_has_the_released_pretraining_values():
    r = load_recipe(ROOT / "recipes" / "vjepa" / "vjepa2_vitl16_256px_16f.yaml")
    enc = r.spec("encoder").params
    assert (enc["size"], enc["image_size"], enc["num_frames"], enc["positions"]) == \
        ("large", 256, 16, "rope")
    data = r.spec("dataset").params
    assert data["fps"] == 4 and list(data["crop_scale"]) == [0.3, 1.0]
    assert list(data["crop_ratio"]) == [0.75, 1.35]
    assert r.spec("target_updater").params == {"start": 0.99925, "end": 0.99925}
    assert r.optim.lr == r.optim.final_lr == pytest.approx(5.25e-4)  # warmup, then constant
    blocks = [(c["num_blocks"], list(c["spatial_scale"]))
              for c in r.spec("masker").params["configurations"]]
    assert blocks == [(8, [0.15, 0.15]), (2, [0.7, 0.7])]


def test_vjepa1_recipe_has_the_released_pretraining_values():
    r = load_recipe(ROOT / "recipes" / "vjepa" / "vjepa_vitl16.yaml")
    enc = r.spec("encoder").params
    assert (enc["image_size"], enc["num_frames"], enc["positions"]) == (224, 16, "sincos")
    assert r.spec("dataset").params["frame_step"] == 4
    assert r.spec("target_updater").params == {"start": 0.998, "end": 1.0}
