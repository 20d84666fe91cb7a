"""``base:``: recipes that start from another, merged key by key; cycles refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jepakit.cli import main
from jepakit.config import unstructure
from jepakit.errors import ConfigError
from jepakit.recipe import load_recipe, read_yaml
from jepakit.recipe_base import merge

KEYS = st.sampled_from(["a", "b", "c", "params", "lr"])
LEAVES = st.one_of(st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3),
                   st.lists(st.integers(), max_size=3), st.none())
TREES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, min_size=1, max_size=4),
                     max_leaves=12)
MAPPINGS = st.dictionaries(KEYS, TREES, max_size=4)


def leaves(tree: dict, prefix: tuple = ()) -> dict[tuple, object]:
    """Every path to a non-mapping value."""
    out: dict[tuple, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


@settings(max_examples=150, deadline=None)
@given(MAPPINGS, MAPPINGS)
def test_merge_is_key_by_key_and_the_child_wins(base, child):
    """Without ``name`` keys: every leaf of the child is in the result; every leaf of the
    base is too unless the child sets that path or a prefix of it; nothing else is."""
    merged = merge(base, child)
    got, mine, theirs = leaves(merged), leaves(child), leaves(base)
    setting = set(mine)
    for path in setting:
        assert got[path] == mine[path]
    for path, value in theirs.items():
        shadowed = any(path[:i] in setting for i in range(1, len(path) + 1)) or any(
            p[:len(path)] == path for p in setting)
        if not shadowed:
            assert got[path] == value
    assert all(path in mine or path in theirs for path in got)
    assert merge(base, {}) == base and merge({}, child) == child


@settings(max_examples=50, deadline=None)
@given(MAPPINGS, MAPPINGS)
def test_merge_leaves_its_inputs_alone(base, child):
    before = (repr(base), repr(child))
    merged = merge(base, child)
    if isinstance(merged.get("a"), dict):
        merged["a"]["new"] = 1
    assert (repr(base), repr(child)) == before


def test_a_component_that_changes_name_drops_the_base_params():
    base = {"name": "x", "masker": {"name": "multiblock", "params": {"num_targets": 4}}}
    child = {"name": "y", "masker": {"name": "block", "params": {"target_scale": [0.6, 0.6]}}}
    assert merge(base, child) == child  # the top level's name is the run's, merged as usual
    same = {"masker": {"name": "multiblock", "params": {"min_keep": 2}}}
    assert merge(base, same)["masker"]["params"] == {"num_targets": 4, "min_keep": 2}


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_base_is_relative_to_the_file_and_chains(tmp_path, tiny_recipe):
    write(tmp_path / "mid.yaml", {"base": str(tiny_recipe), "train": {"steps": 7}})
    leaf = write(tmp_path / "sub" / "leaf.yaml", {"base": "../mid.yaml", "name": "leaf",
                                                  "optim": {"lr": 0.002}})
    recipe = load_recipe(leaf, ["train.batch_size=8"])
    tiny = load_recipe(tiny_recipe)
    assert (recipe.name, recipe.train.steps, recipe.optim.lr) == ("leaf", 7, 0.002)
    assert recipe.train.batch_size == 8  # overrides come after the merge
    assert recipe.optim.warmup_steps == tiny.optim.warmup_steps  # the rest of optim merged in
    assert recipe.encoder == tiny.encoder and "base" not in read_yaml(leaf)


def test_cycles_and_missing_bases_are_clear_errors(tmp_path):
    a = write(tmp_path / "a.yaml", {"base": "b.yaml", "name": "a"})
    write(tmp_path / "b.yaml", {"base": "a.yaml", "name": "b"})
    with pytest.raises(ConfigError, match=r"cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        read_yaml(a)
    selfish = write(tmp_path / "self.yaml", {"base": "self.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        read_yaml(selfish)
    lost = write(tmp_path / "lost.yaml", {"base": "nowhere.yaml"})
    with pytest.raises(ConfigError, match="lost.yaml: base: recipe file not found: nowhere.yaml"):
        read_yaml(lost)
    odd = write(tmp_path / "odd.yaml", {"base": ["a.yaml"]})
    with pytest.raises(ConfigError, match="base: expected the path"):
        read_yaml(odd)


def test_the_ablations_are_a_few_lines_over_the_tiny_recipe(repo_root):
    for path in sorted((repo_root / "recipes" / "ablations").glob("table*.yaml")):
        data = yaml.safe_load(path.read_text())
        assert data["base"] == "../ijepa_tiny.yaml" and set(data) == {"base", "name", "masker"}


def test_recipe_show_prints_the_merged_recipe(repo_root, capsys):
    path = repo_root / "recipes" / "ablations" / "table6_block.yaml"
    assert main(["recipe", "show", str(path)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert "base" not in shown and shown["masker"]["name"] == "block"
    encoder = unstructure(load_recipe(repo_root / "recipes" / "ijepa_tiny.yaml").encoder)
    assert shown["encoder"] == {k: v for k, v in encoder.items() if k != "weight"}
