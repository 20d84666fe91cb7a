"""Plugin manager and the name -> factory registry, one front door per kind.

Plugins (the shipped ones included) are found through the ``jepakit`` entry-point
group; each registration hook returns :class:`Component` specs.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from jepakit import hookspecs
from jepakit.config import structure, unstructure
from jepakit.errors import RegistryError, did_you_mean
from jepakit.kinds import BY_NAME, KINDS, NAMES

ENTRY_POINT_GROUP = "jepakit"
AUTOLOAD_ENV = "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD"
SHIPPED_DISTRIBUTION = "jepakit"

@attrs.define(frozen=True)
class Component:
    """A registered component: its ``name``, a ``factory(config, **context)`` and
    the attrs ``config`` class its params are validated against."""

    name: str
    factory: Callable[..., Any]
    config: type
    example: Mapping[str, Any] = attrs.field(factory=dict)
    """Params of a small, fast instance, for the conformance kit (``jepakit/conformance.py``);
    for a method, the component sections of a small recipe."""
    provider: str = ""
    """Filled in by the registry: the plugin (and package) that registered it."""


@attrs.define(frozen=True)
class Section:
    """A top-level recipe section a plugin owns (``jepakit_recipe_sections``): its
    ``name`` and the attrs ``config`` class its YAML is checked against."""

    name: str
    config: type
    provider: str = ""


class Registry:
    """Every component of every kind, from every registered plugin."""

    def __init__(self, plugins: Iterable[object] = (), *, entry_points: bool = True) -> None:
        self.plugin_manager = pluggy.PluginManager("jepakit")
        self.plugin_manager.add_hookspecs(hookspecs)
        self._providers: dict[str, str] = {}
        if entry_points:
            self._load_entry_points(third_party=os.environ.get(AUTOLOAD_ENV, "") in ("", "0"))
        for plugin in plugins:
            self.register(plugin)
        self._components: dict[str, dict[str, Component]] | None = None

    def _load_entry_points(self, third_party: bool) -> None:
        """Load each ``jepakit`` entry point through pluggy's own loader (which records
        the distribution), one name at a time so a failure names its plugin."""
        seen: dict[str, str] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = (dist.metadata["Name"] if dist is not None else None) or "?"
            if not third_party and dist_name != SHIPPED_DISTRIBUTION:
                continue
            provider = f"{dist_name} {dist.version if dist is not None else ''}".strip()
            if ep.name in seen:
                if seen[ep.name] == provider:
                    continue  # the same distribution seen twice on sys.path
                raise RegistryError(
                    f"two installed packages register a jepakit plugin named '{ep.name}': "
                    f"{seen[ep.name]} and {provider}; uninstall one"
                )
            seen[ep.name] = provider
            try:
                self.plugin_manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
            except Exception as exc:
                raise RegistryError(
                    f"the jepakit plugin '{ep.name}' of {provider} failed to import "
                    f"({ep.value}): {type(exc).__name__}: {exc}; reinstall or uninstall it, "
                    f"or set {AUTOLOAD_ENV}=1 to skip third-party plugins"
                ) from None
            self._providers[ep.name] = provider
        self._check_pending()

    def _check_pending(self) -> None:
        """pluggy's ``check_pending``: a hook implementation whose name matches no jepakit
        hook (``jepakit_masker``) would otherwise be ignored in silence."""
        try:
            self.plugin_manager.check_pending()
        except pluggy.PluginValidationError as exc:
            hooks = [k.hook for k in KINDS] + [n for n in dir(hookspecs) if n.startswith("jepakit_")]
            unknown = self._unknown_hooks()
            if not unknown:
                raise RegistryError(f"a jepakit plugin is invalid: {exc}") from None
            plugin, hook = unknown[0]
            raise RegistryError(
                f"plugin '{plugin}' ({self._providers.get(plugin, plugin)}) implements "
                f"'{hook}', which is not a jepakit hook{did_you_mean(hook, sorted(set(hooks)))}"
            ) from None

    def _unknown_hooks(self) -> list[tuple[str, str]]:
        found = []
        for name in dir(self.plugin_manager.hook):
            caller = getattr(self.plugin_manager.hook, name)
            if not name.startswith("_") and not caller.has_spec():
                for impl in caller.get_hookimpls():
                    if not impl.optionalhook:
                        found.append((impl.plugin_name, name))
        return found

    def register(self, plugin: object, name: str | None = None, provider: str | None = None) -> str:
        """Register a plugin object or module; returns its plugin name."""
        try:
            registered = self.plugin_manager.register(plugin, name=name)
        except ValueError as exc:  # pluggy: same object or same name twice
            raise RegistryError(f"plugin {name or plugin!r} cannot be registered: {exc}") from None
        if registered is None:
            raise RegistryError(f"plugin {name or plugin!r} is blocked from registering")
        self._providers[registered] = provider or self._providers.get(registered, registered)
        self._components = None
        try:
            self._check_pending()
        except RegistryError:
            self.plugin_manager.unregister(name=registered)
            raise
        return registered

    def _collect(self) -> dict[str, dict[str, Component]]:
        table: dict[str, dict[str, Component]] = {kind: {} for kind in NAMES}
        for kind_info in KINDS:
            kind, hook_name = kind_info.name, kind_info.hook
            hook = getattr(self.plugin_manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                provider = f"{impl.plugin_name} ({self._providers.get(impl.plugin_name, '?')})"
                returned = impl.function()
                if isinstance(returned, Component) or not isinstance(returned, Iterable | None):
                    raise RegistryError(
                        f"plugin {provider}: {hook_name} must return a list of jepakit.Component, "
                        f"got {type(returned).__name__}; wrap it in a list")
                for spec in returned or ():
                    if not isinstance(spec, Component):
                        raise RegistryError(
                            f"plugin {provider} returned {spec!r} from {hook_name}; "
                            "expected jepakit.Component"
                        )
                    if spec.name in table[kind]:
                        raise RegistryError(
                            f"duplicate {kind} '{spec.name}': registered by "
                            f"{table[kind][spec.name].provider} and by {provider}"
                        )
                    table[kind][spec.name] = attrs.evolve(spec, provider=provider)
        return table

    def sections(self) -> dict[str, Section]:
        """Name -> plugin-owned recipe section."""
        from jepakit.recipe import Recipe

        found: dict[str, Section] = {}
        reserved = {f.name for f in attrs.fields(Recipe)}
        for impl in self.plugin_manager.hook.jepakit_recipe_sections.get_hookimpls():
            provider = f"{impl.plugin_name} ({self._providers.get(impl.plugin_name, '?')})"
            returned: Any = impl.function()
            for section in returned or ():
                if not isinstance(section, Section) or not attrs.has(section.config):
                    raise RegistryError(f"plugin {provider}: jepakit_recipe_sections must "
                                        "return jepakit.Section(name, attrs config class)s")
                if section.name in reserved or section.name in found:
                    other = found[section.name].provider if section.name in found else "jepakit"
                    raise RegistryError(f"plugin {provider} claims the recipe section "
                                        f"'{section.name}', which {other} owns")
                found[section.name] = attrs.evolve(section, provider=provider)
        return found

    def components(self, kind: str) -> dict[str, Component]:
        """Name -> Component for one kind."""
        if kind not in BY_NAME:
            raise RegistryError(f"unknown component kind '{kind}'{did_you_mean(kind, NAMES)}")
        if self._components is None:
            self._components = self._collect()
        return self._components[kind]

    def get(self, kind: str, name: str) -> Component:
        table = self.components(kind)
        if name not in table:
            valid = ", ".join(sorted(table)) or "none registered"
            raise RegistryError(
                f"unknown {kind} '{name}'{did_you_mean(name, table)}; valid: {valid}"
            )
        return table[name]

    def config(self, kind: str, name: str, params: Mapping[str, Any] | None, path: str = "") -> Any:
        """Validate ``params`` against the component's config class (cheap: builds nothing)."""
        component = self.get(kind, name)
        return structure(component.config, dict(params or {}), path or f"{kind}.params")

    def resolved_params(self, kind: str, name: str, params: Mapping[str, Any] | None) -> dict:
        """``params`` with every default filled in, as plain data."""
        return unstructure(self.config(kind, name, params))

    def create(self, kind: str, name: str, params: Mapping[str, Any] | None = None,
               path: str = "", **context: Any) -> Any:
        """Validate ``params`` and build the component; ``context`` goes to the factory."""
        config = self.config(kind, name, params, path)
        return self.get(kind, name).factory(config, **context)

    def hook(self) -> Any:
        """The pluggy hook relay, for lifecycle calls."""
        return self.plugin_manager.hook


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed plugins, built on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def create(kind: str, name: str, /, _context: Mapping[str, Any] | None = None, **params: Any) -> Any:
    """The front door: ``jepakit.create("masker", "multiblock", num_targets=2)``.

    Params are validated against the component's config class before anything is
    built; factory context (e.g. ``embed_dim`` for predictors) goes in ``_context``.
    """
    return default_registry().create(kind, name, params, **dict(_context or {}))
