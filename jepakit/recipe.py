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
    warmup_steps: int | None = attrs.field(default=None, validator=v.optional(v.ge(0)))
    warmup_epochs: float | None = attrs.field(default=None, validator=v.optional(v.ge(0)))
    weight_decay: float = attrs.field(default=0.04, validator=v.ge(0))
    final_weight_decay: float = attrs.field(default=0.4, validator=v.ge(0))
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = attrs.field(default=1e-8, validator=v.gt(0))
    grad_clip: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))

    def __attrs_post_init__(self) -> None:
        check(self.warmup_steps is None or self.warmup_epochs is None,
              "optim: set warmup_steps or warmup_epochs, not both")
        check(all(0.0 <= b < 1.0 for b in self.betas),
              f"optim.betas: each must be in [0, 1), got {list(self.betas)}")


@attrs.define
class TrainConfig:
    """Length and shape of training. ``batch_size`` is the global batch."""

    steps: int | None = None
    epochs: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    samples_per_epoch: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    batch_size: int = attrs.field(default=64, validator=v.gt(0))
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str = "auto"
    num_workers: int = attrs.field(default=0, validator=v.ge(0))
    skip_nonfinite_steps: int = attrs.field(default=0, validator=v.ge(0))
    """Skip up to N steps whose loss is NaN/inf before stopping (0: stop at the first)."""
    compile: bool = False
    """Compile the step's modules once per input shape (jepakit.compile); pair it with
    a masker that draws few token counts (multiblock ``length_buckets``)."""

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
    """What a run records besides metrics.jsonl (the monitors plugin reads the rest;
    docs/monitoring.md)."""

    every_steps: int = attrs.field(default=10, validator=v.gt(0))
    progress: bool = True
    aim: bool = True
    """Also write an aim run: recipe, metrics, system info, mask pictures (`jepakit ui`)."""
    aim_repo: str | None = None
    """Folder of the aim repository (default: the run directory's parent, e.g. runs/)."""
    monitor_every_steps: int = attrs.field(default=100, validator=v.ge(0))
    """Collapse monitors (RankMe, feature spread, prediction-target cosine); 0: off."""
    mask_images_every_steps: int = attrs.field(default=500, validator=v.ge(0))
    """A picture of sampled masks in the aim run; 0: off."""
    knn_every_steps: int = attrs.field(default=0, validator=v.ge(0))
    """In-training k-NN accuracy of the target encoder on ``knn_data``; 0: off."""
    knn_data: str | None = None
    """Labelled data for the k-NN monitor (as `jepakit eval --data`)."""
    knn_train_samples: int = attrs.field(default=2000, validator=v.gt(0))
    knn_test_samples: int = attrs.field(default=1000, validator=v.gt(0))
    loss_curve: bool = True
    """Write loss.png (loss and monitors against step) at the end of the run."""


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

    def __attrs_post_init__(self) -> None:
        check(self.optim.warmup_epochs is None or self.train.samples_per_epoch is not None,
              "optim.warmup_epochs needs train.samples_per_epoch (images in one epoch)")


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


def _split_name_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """``<component section>.name=...`` overrides go first: they decide which config
    class the section's params overrides are checked against."""
    names = [o for o in overrides
             if o.partition("=")[0].strip() in {f"{s}.name" for s in COMPONENT_SECTIONS}]
    return names, [o for o in overrides if o not in names]


def _switch_component(data: dict[str, Any], override: str) -> None:
    """Apply a ``section.name=...`` override; a different component drops the file's
    params for that section (they belonged to the old component's config)."""
    section = override.partition("=")[0].strip().split(".")[0]
    old = data.get(section, {}).get("name") if isinstance(data.get(section), dict) else None
    apply_override(data, override)
    if data[section].get("name") != old:
        data[section]["params"] = {}


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
    names, others = _split_name_overrides(overrides)
    for override in names:
        _switch_component(data, override)
    for override in others:
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
