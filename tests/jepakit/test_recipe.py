"""Recipes: YAML + overrides -> a validated Recipe, and every failure a ConfigError."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepakit.errors import ConfigError
from jepakit.recipe import Recipe, dump_recipe, load_recipe, read_yaml
from jepakit.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "ijepa_tiny.yaml"
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))

# Built once: hypothesis runs hundreds of examples against it.
REGISTRY = Registry()
TINY_DATA = read_yaml(TINY)


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"ijepa_tiny.yaml", "ijepa_vith14.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads(path, registry):
    recipe = load_recipe(path, registry=registry)
    assert isinstance(recipe, Recipe)
    assert recipe.train.total_steps > 0
    # Component params come back with every default filled in.
    assert "allow_overlap" in recipe.masker.params
    assert "normalize_targets" in recipe.loss.params
    # The dump is valid YAML that loads to the same recipe.
    again = load_recipe(yaml.safe_load(dump_recipe(recipe)), registry=registry)
    assert again == recipe


def test_paper_recipe_values(registry):
    recipe = load_recipe(ROOT / "recipes" / "ijepa_vith14.yaml", registry=registry)
    assert recipe.encoder.params["size"] == "huge"
    assert recipe.encoder.params["patch_size"] == 14
    assert recipe.masker.params["num_targets"] == 4
    assert recipe.masker.params["target_scale"] == [0.15, 0.2]
    assert recipe.masker.params["context_scale"] == [0.85, 1.0]
    assert recipe.predictor.params["embed_dim"] == 384
    assert recipe.predictor.params["depth"] == 12
    assert recipe.target_updater.params == {"start": 0.996, "end": 1.0}
    assert recipe.loss.name == "smooth_l1"
    assert recipe.optim.lr == pytest.approx(1e-3)
    assert recipe.train.batch_size == 2048
    # 300 epochs of 1281167 images at batch 2048.
    assert recipe.train.total_steps == 300 * (1281167 // 2048)


def test_overrides_parse_to_field_types(registry):
    recipe = load_recipe(
        TINY,
        ["train.steps=5", "optim.lr=1e-3", "masker.params.target_scale=[0.1,0.2]",
         "optim.betas=[0.8, 0.9]", "logging.progress=false", "name=123", "train.seed=7"],
        registry=registry,
    )
    assert recipe.train.steps == 5 and type(recipe.train.steps) is int
    assert recipe.optim.lr == pytest.approx(1e-3) and type(recipe.optim.lr) is float
    assert recipe.optim.betas == (0.8, 0.9) and isinstance(recipe.optim.betas, tuple)
    assert recipe.logging.progress is False
    assert recipe.name == "123"  # a str field takes the text as written
    assert recipe.train.seed == 7
    # Component params are validated against the masker's config class (tuple field).
    masker = registry.create("masker", recipe.masker.name, recipe.masker.params)
    assert masker.config.target_scale == (0.1, 0.2)
    assert recipe.masker.params["target_scale"] == [0.1, 0.2]


def test_override_creates_missing_section(registry):
    recipe = load_recipe(TINY, ["loss.params.normalize_targets=false"], registry=registry)
    assert recipe.loss.params == {"normalize_targets": False}


def test_override_switches_steps_to_epochs(registry):
    recipe = load_recipe(
        TINY,
        ["train.steps=null", "train.epochs=2", "train.samples_per_epoch=640",
         "train.batch_size=64"],
        registry=registry,
    )
    assert recipe.train.total_steps == 2 * (640 // 64)


def test_later_override_wins(registry):
    recipe = load_recipe(TINY, ["train.steps=5", "train.steps=9"], registry=registry)
    assert recipe.train.steps == 9


def test_load_from_dict_does_not_mutate_it(registry):
    data = read_yaml(TINY)
    before = yaml.safe_dump(data)
    load_recipe(data, ["train.steps=3", "encoder.params.depth=1"], registry=registry)
    assert yaml.safe_dump(data) == before


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("train.stpes=5", ["train.stpes", "did you mean 'steps'"]),
        ("trian.steps=5", ["trian", "did you mean 'train'"]),
        ("masker.params.num_target=2", ["masker.params.num_target", "did you mean 'num_targets'"]),
        ("encoder.params.embed_dims=64", ["encoder.params.embed_dims", "did you mean 'embed_dim'"]),
        ("train.nonexistent=1", ["train.nonexistent"]),
    ],
)
def test_unknown_key(override, needles, registry):
    with pytest.raises(ConfigError) as info:
        load_recipe(TINY, [override], registry=registry)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("train.steps=abc", ["train.steps", "'abc'", "int"]),
        ("train.batch_size=2.5", ["train.batch_size", "2.5", "expected int"]),
        ("optim.lr=fast", ["optim.lr", "'fast'", "float"]),
        ("logging.progress=3", ["logging.progress", "3", "expected bool"]),
        ("train.precision=fp8", ["train.precision", "'fp8'", "'bf16'"]),
        ("masker.params.target_scale=0.2", ["masker.params.target_scale", "0.2", "tuple"]),
        ("masker.params.num_targets=[1]", ["masker.params.num_targets", "[1]", "expected int"]),
        ("encoder.params.size=enormous", ["encoder.params", "size"]),
    ],
)
def test_wrong_type_names_key_value_and_type(override, needles, registry):
    with pytest.raises(ConfigError) as info:
        load_recipe(TINY, [override], registry=registry)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    "override",
    ["train.steps=0", "train.batch_size=0", "optim.lr=0", "checkpoint.keep_last=0",
     "train.steps=null", "train.epochs=3", "optim.warmup_epochs=1",
     "target_updater.params.start=1.5", "masker.params.target_scale=[0.3,0.1]",
     "encoder.params.patch_size=5", "encoder.name=vitt", "loss.name=l3",
     "train.seed.x=1", "name.x=1"],
)
def test_invalid_values_are_config_errors(override, registry):
    with pytest.raises(ConfigError):
        load_recipe(TINY, [override], registry=registry)


def test_unknown_component_name_is_config_error_with_hint(registry):
    with pytest.raises(ConfigError) as info:
        load_recipe(TINY, ["masker.name=multiblok"], registry=registry)
    message = str(info.value)
    assert message.startswith("masker.name:")
    assert "did you mean 'multiblock'" in message


def test_missing_file(tmp_path, registry):
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "nope.yaml", registry=registry)


def test_invalid_yaml_and_non_mapping(tmp_path, registry):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(bad, registry=registry)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_recipe(scalar, registry=registry)


def test_missing_section(tmp_path, registry):
    data = read_yaml(TINY)
    del data["predictor"]
    with pytest.raises(ConfigError, match="predictor"):
        load_recipe(data, registry=registry)


@pytest.mark.parametrize("override", ["noequals", "=3", "a..b=1", ".a=1", "a.=1", " =1"])
def test_malformed_override(override, registry):
    with pytest.raises(ConfigError, match="key.path=value"):
        load_recipe(TINY, [override], registry=registry)


# ---------------------------------------------------------------- property tests

REAL_SEGMENTS = [
    "name", "encoder", "masker", "predictor", "target_updater", "loss", "data", "train",
    "optim", "checkpoint", "logging", "params", "steps", "epochs", "samples_per_epoch",
    "batch_size", "seed", "precision", "device", "num_workers", "lr", "start_lr", "final_lr",
    "warmup_steps", "warmup_epochs", "weight_decay", "final_weight_decay", "betas", "eps",
    "grad_clip", "every_steps", "keep_last", "enabled", "progress", "aim", "size",
    "image_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
    "drop_path", "num_targets", "target_scale", "target_aspect", "context_scale",
    "context_aspect", "allow_overlap", "min_keep", "max_tries", "start", "end",
    "normalize_targets", "num_samples", "noise",
]
VALUES = [
    "", " ", "0", "-1", "1", "3", "1.5", "1e-3", "1.0e-3", "-0.0", ".inf", "-.inf", ".nan",
    "nan", "inf", "true", "false", "yes", "no", "null", "~", "[]", "{}", "[0.1, 0.2]",
    "[0.2, 0.1]", "[1, 2, 3]", "[a, b]", "{a: 1}", "{size: tiny}", "'x'", '"y"', "tiny",
    "huge", "fp32", "bf16", "cpu", "2020-01-01", "0x1F", "0o17", "1_000", "[", "{", "]",
    "a: b: c", "&a [*a]", "!!python/object/apply:os.system [echo]", "!!binary aGk=",
    "? [1, 2]\n: 3", "{[1]: 2}", "- 1\n- 2", "|\n  text", "1e400", "99999999999999999999",
]
segment = st.one_of(
    st.sampled_from(REAL_SEGMENTS),
    st.text(alphabet=string.ascii_letters + string.digits + "_- []", min_size=0, max_size=6),
)
key_path = st.lists(segment, min_size=1, max_size=5).map(".".join)
value = st.one_of(
    st.sampled_from(VALUES),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats().map(repr),
    st.text(max_size=12),
    st.lists(st.sampled_from(["0.1", "1", "x", "null", "[]"]), max_size=3).map(
        lambda xs: "[" + ", ".join(xs) + "]"
    ),
)
structured_override = st.builds(lambda k, v: f"{k}={v}", key_path, value)
any_override = st.one_of(structured_override, st.text(max_size=40))


def _load_or_config_error(overrides: list[str]) -> None:
    try:
        recipe = load_recipe(TINY_DATA, overrides, registry=REGISTRY)
    except ConfigError:
        return
    assert isinstance(recipe, Recipe)
    dump_recipe(recipe)  # whatever loads must also dump


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_arbitrary_text_override_is_config_error_or_success(text):
    _load_or_config_error([text])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(structured_override, min_size=1, max_size=4))
def test_structured_overrides_are_config_error_or_success(overrides):
    _load_or_config_error(overrides)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_override, min_size=1, max_size=3))
def test_mixed_overrides_are_config_error_or_success(overrides):
    _load_or_config_error(overrides)


@pytest.mark.parametrize(
    "override",
    ["optim.betas=[2, 3]",  # AdamW raises ValueError at build
     "optim.warmup_steps=-5",  # silently accepted
     "encoder.params.embed_dim=0",  # silently replaced by the preset's width
     "encoder.params.depth=-1"],  # builds an encoder with no blocks
)
def test_meaningless_values_are_rejected(override, registry):
    with pytest.raises(ConfigError):
        load_recipe(TINY, [override], registry=registry)
