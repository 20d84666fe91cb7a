"""Recipes: plain YAML -> a typed, validated :class:`Recipe`.

``load_recipe("recipes/ijepa_tiny.yaml", ["train.steps=200"])`` reads the file
with ``yaml.safe_load``, applies ``key.path=value`` overrides (values parsed as
YAML, then checked against the field's type) and validates every component's
params against its registered config class. Every failure is a ConfigError that
names the key.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml
from attrs import validators as v

from jepakit.config import check, field_types, structure, unstructure
from jepakit.errors import ConfigError, JepakitError, did_you_mean


@attrs.define
class ComponentSpec:
    """``{name, params}``: which registered component, and its parameters."""

    name: str
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class OptimConfig:
    """AdamW with warmup + cosine lr and a cosine weight-decay schedule (official I-JEPA)."""

    lr: float = attrs.field(default=1e-3, validator=v.gt(0))
    start_lr: float = attrs.field(default=2e-4, validator=v.ge(0))
    final_lr: float = attrs.field(default=1e-6, validator=v.ge(0))
    warmup_steps: int | None = None
    warmup_epochs: float | None = None
    weight_decay: float = attrs.field(default=0.04, validator=v.ge(0))
    final_weight_decay: float = attrs.field(default=0.4, validator=v.ge(0))
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = attrs.field(default=1e-8, validator=v.gt(0))
    grad_clip: float | None = None

    def __attrs_post_init__(self) -> None:
        check(self.warmup_steps is None or self.warmup_epochs is None,
              "optim: set warmup_steps or warmup_epochs, not both")


@attrs.define
class TrainConfig:
    """Length and shape of training. ``batch_size`` is the global batch."""

    steps: int | None = None
    epochs: float | None = None
    samples_per_epoch: int | None = None
    batch_size: int = attrs.field(default=64, validator=v.gt(0))
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    num_workers: int = attrs.field(default=0, validator=v.ge(0))

    def __attrs_post_init__(self) -> None:
        check((self.steps is None) != (self.epochs is None),
              "train: set exactly one of train.steps and train.epochs")
        check(self.steps is None or self.steps > 0, "train.steps: must be > 0")
        check(self.epochs is None or self.samples_per_epoch is not None,
              "train.epochs needs train.samples_per_epoch (images in one epoch)")

    @property
    def steps_per_epoch(self) -> int | None:
        if self.samples_per_epoch is None:
            return None
        return max(1, self.samples_per_epoch // self.batch_size)

    @property
    def total_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None and self.steps_per_epoch is not None
        return max(1, round(self.epochs * self.steps_per_epoch))


@attrs.define
class CheckpointConfig:
    every_steps: int = attrs.field(default=0, validator=v.ge(0))
    """Save every N steps (0: only at the end)."""
    keep_last: int = attrs.field(default=2, validator=v.ge(1))
    enabled: bool = True


@attrs.define
class LoggingConfig:
    every_steps: int = attrs.field(default=10, validator=v.gt(0))
    progress: bool = True
    aim: bool = False


@attrs.define
class Recipe:
    """The whole run: five components, a data source, optimisation and bookkeeping."""

    encoder: ComponentSpec
    masker: ComponentSpec
    predictor: ComponentSpec
    target_updater: ComponentSpec
    loss: ComponentSpec
    data: ComponentSpec
    train: TrainConfig
    optim: OptimConfig = attrs.field(factory=OptimConfig)
    checkpoint: CheckpointConfig = attrs.field(factory=CheckpointConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    name: str = "run"


COMPONENT_SECTIONS: dict[str, str] = {
    "encoder": "encoder",
    "masker": "masker",
    "predictor": "predictor",
    "target_updater": "target_updater",
    "loss": "loss",
    "data": "dataset",
}
"""Recipe section -> component kind."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def _annotation_at(parts: list[str]) -> Any:
    """The declared type of a dotted path in Recipe, or None inside free-form params."""
    cls: Any = Recipe
    for part in parts:
        if not attrs.has(cls):
            return None
        hints = field_types(cls)
        if part not in hints:
            return None
        cls = hints[part]
    return cls


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``a.b.c=value`` override to raw recipe data in place."""
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{override}': expected key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    node: Any = data
    cls: Any = Recipe
    for i, part in enumerate(parts[:-1]):
        if cls is not None and attrs.has(cls):
            hints = field_types(cls)
            if part not in hints:
                prefix = ".".join(parts[: i + 1])
                raise ConfigError(f"unknown key '{prefix}'{did_you_mean(part, hints)}")
            cls = hints[part]
        else:
            cls = None
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{override}': '{'.'.join(parts[: i + 1])}' is not a section")
        node = child
    if _annotation_at(parts) is str and not isinstance(value, str):
        value = raw.strip()  # `name=123` means the string "123" for a str field
    node[parts[-1]] = value


def load_recipe(
    source: str | Path | dict[str, Any] | Recipe,
    overrides: Sequence[str] = (),
    registry: Any = None,
) -> Recipe:
    """Read, override and fully validate a recipe (component params included)."""
    if isinstance(source, Recipe):
        data = unstructure(source)
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        data = read_yaml(source)
    for override in overrides:
        apply_override(data, override)
    recipe = structure(Recipe, data)
    return resolve_components(recipe, registry)


def resolve_components(recipe: Recipe, registry: Any = None) -> Recipe:
    """Check each component name and params against the registry; fill in defaults."""
    from jepakit.registry import default_registry

    registry = registry or default_registry()
    for section, kind in COMPONENT_SECTIONS.items():
        spec: ComponentSpec = getattr(recipe, section)
        try:
            registry.get(kind, spec.name)
        except JepakitError as exc:
            raise ConfigError(f"{section}.name: {exc}") from None
        spec.params = unstructure(registry.config(kind, spec.name, spec.params, f"{section}.params"))
    return recipe


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(unstructure(recipe), sort_keys=False)
