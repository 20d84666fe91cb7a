"""Recipes: plain YAML -> a typed, validated :class:`Recipe`.

``load_recipe("recipes/ijepa_tiny.yaml", ["train.steps=200"])`` reads the file
with ``yaml.safe_load``, applies ``key.path=value`` overrides (values parsed as
YAML, then checked against the field's type) and validates every component's
params against its registered config class. Every failure is a ConfigError that
names the key.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml
from attrs import validators as v

from jepakit.config import check, field_types, structure, unstructure
from jepakit.data.views import ViewGroup
from jepakit.errors import ConfigError, JepakitError, did_you_mean
from jepakit.kinds import BY_NAME, BY_SECTION, RECIPE_KINDS, Kind


@attrs.define
class ComponentSpec:
    """``{name, params}``: which registered component, and its parameters."""

    name: str
    params: dict[str, Any] = attrs.field(factory=dict)
    weight: float = 1.0
    """A loss term's weight in the total loss (sections that list several components)."""


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
    """What the engine records: metrics.jsonl every ``every_steps`` and a progress bar.
    Monitors, aim and loss.png are the monitors plugin's (its ``monitors:`` section,
    docs/monitoring.md): plugins own their recipe sections."""

    every_steps: int = attrs.field(default=10, validator=v.gt(0))
    progress: bool = True


def _sec(kind: Kind) -> str:
    """The recipe section of a kind that has one (every kind in ``RECIPE_KINDS``)."""
    if kind.section is None:
        raise ConfigError(f"a recipe has no section for {kind.name} components")
    return kind.section


def _with_component_sections(cls: type) -> type:
    """One optional section per component kind (``jepakit/kinds.py``), added before attrs
    builds the class, so that a new kind needs no edit here. Which sections a recipe
    must have is the method's to say (:func:`resolve_components`)."""
    for kind in RECIPE_KINDS:
        many = " | list[ComponentSpec]" if kind.many else ""
        cls.__annotations__[_sec(kind)] = f"ComponentSpec{many} | None"
        setattr(cls, _sec(kind), None)
    return cls


@attrs.define
@_with_component_sections
class Recipe:
    """The whole run: a method and the components it is built from (one section per
    kind, ``jepakit/kinds.py``), a data source, optimisation and bookkeeping."""

    train: TrainConfig
    optim: OptimConfig = attrs.field(factory=OptimConfig)
    checkpoint: CheckpointConfig = attrs.field(factory=CheckpointConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    name: str = "run"
    views: list[ViewGroup] | None = None
    sections: dict[str, Any] = attrs.field(factory=dict)
    """Plugin-owned top-level sections (``jepakit_recipe_sections``), checked configs by name."""

    def section(self, name: str) -> Any:
        """A plugin-owned section's config (its defaults when the recipe has none)."""
        if name not in self.sections:
            raise ConfigError(f"no recipe section '{name}' is registered (is its plugin "
                              "installed?)")
        return self.sections[name]

    def __attrs_post_init__(self) -> None:
        check(self.optim.warmup_epochs is None or self.train.samples_per_epoch is not None,
              "optim.warmup_epochs needs train.samples_per_epoch (images in one epoch)")
        for kind in RECIPE_KINDS:
            if kind.many:
                continue
            spec = getattr(self, _sec(kind))
            check(spec is None or spec.weight == 1.0,
                  f"{_sec(kind)}.weight: only loss terms have a weight")

    def specs(self, kind: str) -> list[ComponentSpec]:
        """The components of ``kind`` the recipe names (none, one, or a list of terms)."""
        value = getattr(self, _sec(BY_NAME[kind]))
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def spec(self, kind: str) -> ComponentSpec:
        """The one component of ``kind``; a ConfigError when the recipe names none."""
        specs = self.specs(kind)
        if len(specs) != 1:
            section = _sec(BY_NAME[kind])
            raise ConfigError(f"{section}: expected one {kind} component, the recipe names "
                              f"{len(specs)}")
        return specs[0]

    def has(self, kind: str) -> bool:
        return getattr(self, _sec(BY_NAME[kind])) is not None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A recipe file's raw data, merged over its ``base:`` recipes (:mod:`jepakit.recipe_base`)."""
    from jepakit.recipe_base import with_bases

    return with_bases(Path(path), _read_one)


def _read_one(path: str | Path) -> dict[str, Any]:
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
        cls = _unwrap_section(hints[part])
    return cls


def _unwrap_section(tp: Any) -> Any:
    """``ComponentSpec | None`` (a component section) -> ComponentSpec."""
    found = [a for a in typing.get_args(tp) if attrs.has(a)]
    return found[0] if found and not attrs.has(tp) else tp


def apply_override(data: dict[str, Any], override: str,
                   sections: dict[str, type] | None = None) -> None:
    """Apply one ``a.b.c=value`` override to raw recipe data in place; ``sections`` are the
    plugin-owned top-level sections and their config classes."""
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{override}': expected key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, dict) and value and all(v is None for v in value.values()):
        value = raw.strip()  # `{a.tar,b.tar}`: a brace list (webdataset's syntax), not a mapping
    parts = key.split(".")
    node: Any = data
    cls: Any = Recipe
    for i, part in enumerate(parts[:-1]):
        if i == 0 and sections and part in sections:
            cls = sections[part]
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{override}': '{part}' is not a section")
            continue
        if cls is not None and attrs.has(cls):
            hints = field_types(cls)
            if part not in hints:
                prefix = ".".join(parts[: i + 1])
                raise ConfigError(f"unknown key '{prefix}'{did_you_mean(part, hints)}")
            cls = hints[part]
        else:
            cls = None
        if isinstance(node, list):  # a list section: `loss.1.weight=0.1`
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override '{override}': '{'.'.join(parts[:i])}' is a list of "
                                  f"{len(node)}; use an index 0..{len(node) - 1}")
            node = node[int(part)]
            cls = ComponentSpec
            continue
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict | list):
            raise ConfigError(f"override '{override}': '{'.'.join(parts[: i + 1])}' is not a section")
        node = child
    if _annotation_at(parts) is str and not isinstance(value, str):
        value = raw.strip()  # `name=123` means the string "123" for a str field
    node[parts[-1]] = value


def _split_name_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """``<component section>.name=...`` overrides go first: they decide which config
    class the section's params overrides are checked against."""
    names = [o for o in overrides
             if o.partition("=")[0].strip() in {f"{s}.name" for s in BY_SECTION}]
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
    from jepakit.registry import default_registry

    registry = registry or default_registry()
    owned = {name: section.config for name, section in registry.sections().items()}
    data.update(data.pop("sections", None) or {})  # a recipe as unstructure() wrote it
    names, others = _split_name_overrides(overrides)
    for override in names:
        _switch_component(data, override)
    for override in others:
        apply_override(data, override, owned)
    raw = {name: data.pop(name) for name in list(data) if name in owned}
    _check_component_sections(data)
    recipe = structure(Recipe, data)
    recipe.sections = {name: structure(cls, raw.get(name) or {}, name)
                       for name, cls in owned.items()}
    return resolve_components(recipe, registry)


def _check_component_sections(data: dict[str, Any]) -> None:
    """``masker: stripes`` (or ``masker=stripes`` on the command line) names a component
    without the section's ``name:`` key: say how to write it."""
    for section in BY_SECTION:
        value = data.get(section)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            raise ConfigError(f"{section}: expected a section {{name: ..., params: {{...}}}}, "
                              f"got {value!r}; to pick a component write "
                              f"'{section}: {{name: {value}}}' or override {section}.name={value}")


def resolve_components(recipe: Recipe, registry: Any = None) -> Recipe:
    """Check each component name and params against the registry, fill in defaults, and
    check that the recipe has exactly the sections its method is built from."""
    from jepakit.registry import default_registry

    registry = registry or default_registry()
    for kind in RECIPE_KINDS:
        specs = recipe.specs(kind.name)
        for i, spec in enumerate(specs):
            where = f"{_sec(kind)}[{i}]" if isinstance(getattr(recipe, _sec(kind)), list) \
                else _sec(kind)
            registry.components(kind.name)  # registry-wide errors are not this section's
            try:
                registry.get(kind.name, spec.name)
            except JepakitError as exc:
                raise ConfigError(f"{where}.name: {exc}") from None
            spec.params = unstructure(registry.config(kind.name, spec.name, spec.params,
                                                      f"{where}.params"))
    for required in ("method", "dataset"):
        if not recipe.has(required):
            raise ConfigError(f"missing required key(s): {_sec(BY_NAME[required])}")
    method = recipe.spec("method").name
    uses = method_components(registry, method)
    for kind in RECIPE_KINDS:
        if kind.name in ("method", "dataset"):
            continue
        if uses.get(kind.name) and not recipe.has(kind.name):
            raise ConfigError(f"{_sec(kind)}: method '{method}' needs a {kind.name}; add a "
                              f"'{_sec(kind)}:' section naming one")
        if kind.name not in uses and recipe.has(kind.name):
            used = ", ".join(sorted(uses)) or "none"
            raise ConfigError(f"{_sec(kind)}: method '{method}' does not use a {kind.name} "
                              f"(it is built from: {used}); remove the section")
    return recipe


def method_components(registry: Any, method: str) -> dict[str, bool]:
    """The kinds a method is built from, each mapped to whether it is required."""
    factory = registry.get("method", method).factory
    uses = getattr(factory, "components", None)
    if not isinstance(uses, dict) or not set(uses) <= set(BY_NAME):
        raise JepakitError(f"method '{method}' must declare `components`, a dict of component "
                           f"kind -> required (kinds: {', '.join(BY_NAME)}); got {uses!r}")
    return {str(k): bool(v) for k, v in uses.items()}


def dump_recipe(recipe: Recipe) -> str:
    data = unstructure(recipe)
    data.update(data.pop("sections", None) or {})  # plugin sections at the top level
    for kind in RECIPE_KINDS:  # leave out absent sections and the default weight of single ones
        if data.get(_sec(kind)) is None:
            data.pop(_sec(kind), None)
        elif isinstance(data[_sec(kind)], dict) and data[_sec(kind)].get("weight") == 1.0:
            del data[_sec(kind)]["weight"]
    return yaml.safe_dump(data, sort_keys=False)
