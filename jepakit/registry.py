"""Plugin manager and the name -> factory registry, one front door per kind.

Plugins (the shipped ones included) are found through the ``jepakit`` entry-point
group; each registration hook returns :class:`Component` specs.

An installed plugin that is broken (fails to import, implements a misspelt hook, returns
a malformed registration, or registers a name another plugin owns) is turned off with one
:class:`jepakit.errors.PluginWarning` naming it, its package and the cause; the other
plugins keep working, ``jepakit plugins`` lists it, and a recipe naming one of its
components fails with that cause. A plugin an author registers from Python
(``Registry(plugins=[...])``, :meth:`Registry.register`) is their own code under test:
its mistakes raise :class:`jepakit.RegistryError` at once instead.
``JEPAKIT_DISABLE_PLUGINS=name1,name2`` blocks installed plugins by entry-point name
(pluggy's ``set_blocked``).
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from jepakit import hookspecs
from jepakit.config import is_config_class, structure, unstructure
from jepakit.errors import PluginWarning, RegistryError, did_you_mean
from jepakit.kinds import BY_NAME, KINDS, NAMES

ENTRY_POINT_GROUP = "jepakit"
AUTOLOAD_ENV = "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "JEPAKIT_DISABLE_PLUGINS"
SHIPPED_DISTRIBUTION = "jepakit"
BY_HOOK = {k.hook: k.name for k in KINDS}
"""Registration hook -> kind."""
SECTION = "recipe section"
"""The owners table's key for plugin-owned recipe sections (beside the component kinds)."""

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


@attrs.define(frozen=True)
class BrokenPlugin:
    """An installed plugin that was turned off, and why."""

    name: str
    """Its entry-point name (what ``JEPAKIT_DISABLE_PLUGINS`` takes)."""
    package: str
    """The distribution that installed it, with its version."""
    cause: str
    components: tuple[tuple[str, str], ...] = ()
    """(kind, name) of each component it was seen to register, where known."""

    def describe(self) -> str:
        return f"jepakit plugin '{self.name}' ({self.package})"


class _Malformed(Exception):
    """A plugin's registration is wrong; ``cause`` says what to change."""

    def __init__(self, cause: str, components: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(cause)
        self.cause, self.components = cause, components


def disabled_plugins() -> tuple[str, ...]:
    """The entry-point names in ``JEPAKIT_DISABLE_PLUGINS`` (comma-separated)."""
    return tuple(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())


def _warn(message: str, stacklevel: int) -> None:
    """A :class:`PluginWarning`, from the first process only: under torchrun every rank
    loads the same plugins, and one warning per rank would say the same thing N times
    (``jepakit plugins`` and ``Registry.broken`` still tell every rank)."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        return
    warnings.warn(message, PluginWarning, stacklevel=stacklevel)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _names(kind: str, specs: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((kind, s.name) for s in specs if isinstance(s, Component | Section))


def _factory_fits(factory: Callable[..., Any], *args: Any, partial: bool = False,
                  **kwargs: Any) -> str:
    """'' when ``factory(*args, **kwargs)`` binds to its signature (``partial``: the
    arguments given are accepted, others may follow), else why not."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return ""
    try:
        (signature.bind_partial if partial else signature.bind)(*args, **kwargs)
    except TypeError as exc:
        name = getattr(factory, "__qualname__", repr(factory))
        return f"its factory {name}{signature} cannot be called so ({exc})"
    return ""


class Registry:
    """Every component of every kind, from every registered plugin."""

    def __init__(self, plugins: Iterable[object] = (), *, entry_points: bool = True) -> None:
        self.plugin_manager = pluggy.PluginManager("jepakit")
        self.plugin_manager.add_hookspecs(hookspecs)
        self._providers: dict[str, str] = {}
        self._distributions: dict[str, str] = {}
        self._explicit: set[str] = set()
        self._broken: list[BrokenPlugin] = []
        self._components: dict[str, dict[str, Component]] | None = None
        self._sections: dict[str, Section] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self.disabled = disabled_plugins()
        for name in self.disabled:
            self.plugin_manager.set_blocked(name)
        if entry_points:
            self._load_entry_points(third_party=os.environ.get(AUTOLOAD_ENV, "") in ("", "0"))
        for plugin in plugins:
            self.register(plugin)

    # ------------------------------------------------------------ loading and isolation

    def _load_entry_points(self, third_party: bool) -> None:
        """Load each ``jepakit`` entry point by name; a broken one is turned off."""
        found: dict[str, list[tuple[metadata.EntryPoint, str, str]]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = (dist.metadata["Name"] if dist is not None else None) or "?"
            if not third_party and dist_name != SHIPPED_DISTRIBUTION:
                continue
            provider = f"{dist_name} {dist.version if dist is not None else ''}".strip()
            entries = found.setdefault(ep.name, [])
            if all(p != provider for _, _, p in entries):  # a distribution seen twice on sys.path
                entries.append((ep, dist_name, provider))
        for name, entries in found.items():
            if self.plugin_manager.is_blocked(name):
                continue
            if len(entries) > 1:
                packages = " and ".join(p for _, _, p in entries)
                cause = (f"two installed packages register a jepakit plugin named '{name}': "
                         f"{packages}; uninstall one")
                for _, dist_name, provider in entries:
                    if dist_name != SHIPPED_DISTRIBUTION:
                        self._turn_off(name, provider, cause)
                entries = [e for e in entries if e[1] == SHIPPED_DISTRIBUTION]
                if len(entries) != 1:
                    continue
            ep, dist_name, provider = entries[0]
            self._load(ep, dist_name, provider)
        for name in self.disabled:
            if name not in found:
                _warn(f"{DISABLE_ENV} names '{name}', which is no installed jepakit "
                      f"plugin{did_you_mean(name, found)}; installed: "
                      f"{', '.join(sorted(found)) or 'none'}", stacklevel=4)

    def _load(self, ep: metadata.EntryPoint, dist_name: str, provider: str) -> None:
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (any failure turns it off)
            self._turn_off(ep.name, provider, f"importing {ep.value} failed: {_one_line(exc)}; "
                           "fix or reinstall the package")
            return
        try:
            self.plugin_manager.register(plugin, name=ep.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            self._turn_off(ep.name, provider, self._registration_refused(exc, plugin))
            return
        self._providers[ep.name] = provider
        self._distributions[ep.name] = dist_name
        misspelt = self._unknown_hook(ep.name)
        if misspelt:
            self._turn_off(ep.name, provider, misspelt, self._misspelt_components(ep.name))

    def _misspelt_components(self, plugin_name: str) -> tuple[tuple[str, str], ...]:
        """(kind, name) of what a misspelt registration hook (``jepakit_masker``) returns,
        so a recipe naming one of them is told why it is missing."""
        found: list[tuple[str, str]] = []
        for hook_name in dir(self.plugin_manager.hook):
            caller = getattr(self.plugin_manager.hook, hook_name)
            close = difflib.get_close_matches(hook_name, BY_HOOK, n=1, cutoff=0.8)
            if hook_name.startswith("_") or caller.has_spec() or not close:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                try:
                    returned = list(impl.function())
                except Exception:  # noqa: BLE001 (best effort: the cause is reported anyway)
                    continue
                found += _names(BY_HOOK[close[0]], returned)
        return tuple(found)

    def _turn_off(self, name: str, provider: str, cause: str,
                  components: tuple[tuple[str, str], ...] = ()) -> None:
        """Unregister an installed plugin, remember why, and warn once."""
        if self.plugin_manager.has_plugin(name):
            self.plugin_manager.unregister(name=name)
        broken = BrokenPlugin(name, provider, cause, components)
        self._broken.append(broken)
        self._components = None
        _warn(f"{broken.describe()} is off: {cause} (the other plugins work; "
              f"{DISABLE_ENV}={name} silences this)", stacklevel=5)

    def _registration_refused(self, exc: Exception, plugin: object) -> str:
        """pluggy's refusal of a plugin, in one line without its internal tables."""
        if isinstance(exc, pluggy.PluginValidationError):
            return f"a hook implementation does not fit its hook: {' '.join(str(exc).split())}"
        if self.plugin_manager.is_registered(plugin):
            other = self.plugin_manager.get_name(plugin)
            return f"the same module or object is already registered as plugin '{other}'"
        return "a plugin of that name is already registered"

    def _unknown_hook(self, plugin_name: str) -> str:
        """Why the plugin is wrong if it implements a hook jepakit does not have
        (``jepakit_masker``: pluggy would otherwise ignore it in silence), else ''."""
        hooks = sorted({k.hook for k in KINDS} | {n for n in dir(hookspecs)
                                                  if n.startswith("jepakit_")})
        for name in dir(self.plugin_manager.hook):
            caller = getattr(self.plugin_manager.hook, name)
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name == plugin_name and not impl.optionalhook:
                    return (f"it implements '{name}', which is not a jepakit hook"
                            f"{did_you_mean(name, hooks)}; rename it")
        return ""

    def register(self, plugin: object, name: str | None = None, provider: str | None = None) -> str:
        """Register a plugin object or module; returns its plugin name. Unlike an installed
        plugin, any mistake in it raises :class:`RegistryError` here."""
        try:
            registered = self.plugin_manager.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise RegistryError(f"plugin {name or plugin!r} cannot be registered: "
                                f"{self._registration_refused(exc, plugin)}") from None
        if registered is None:
            blocked = name or self.plugin_manager.get_canonical_name(plugin)
            raise RegistryError(f"plugin '{blocked}' is blocked from registering "
                                f"({DISABLE_ENV}={','.join(self.disabled)})")
        label = getattr(plugin, "__name__", None) or f"{type(plugin).__name__} object"
        self._providers[registered] = provider or self._providers.get(registered, label)
        self._explicit.add(registered)
        self._components = None
        try:
            cause = self._unknown_hook(registered)
            if cause:
                raise _Malformed(cause)
            self._registrations(registered)
        except Exception as exc:  # its own hook failed, or a _Malformed registration
            self.plugin_manager.unregister(name=registered)
            self._explicit.discard(registered)
            if isinstance(exc, _Malformed):
                raise RegistryError(f"plugin {self._describe(registered)}: {exc.cause}") from None
            raise
        return registered

    def _registrations(self, plugin_name: str) -> list[tuple[str, Any]]:
        """(kind, Component) for each component the plugin registers, and (SECTION,
        Section) for each recipe section it owns; :class:`_Malformed` if any is wrong."""
        found: list[tuple[str, Any]] = []
        hooks = [(k.name, k.hook) for k in KINDS] + [(SECTION, "jepakit_recipe_sections")]
        for kind, hook_name in hooks:
            for impl in getattr(self.plugin_manager.hook, hook_name).get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                returned = impl.function()
                expected = "jepakit.Section" if kind == SECTION else "jepakit.Component"
                if isinstance(returned, Component | Section) or \
                        not isinstance(returned, Iterable | None):
                    raise _Malformed(
                        f"{hook_name} must return a list of {expected}, got "
                        f"{type(returned).__name__}; wrap it in a list: return [...]",
                        _names(kind, [returned]))
                for spec in returned or ():
                    found.append((kind, self._checked(kind, hook_name, spec, found)))
        return found

    def _checked(self, kind: str, hook_name: str, spec: Any, found: list) -> Any:
        """One registration, checked: the right type, a config class, a factory that
        takes the config."""
        names = tuple((k, s.name) for k, s in found)
        if kind == SECTION:
            if not isinstance(spec, Section):
                raise _Malformed(f"{hook_name} returned {spec!r}; expected "
                                 "jepakit.Section(name, config class)", names)
        elif not isinstance(spec, Component):
            raise _Malformed(f"{hook_name} returned {spec!r}; expected jepakit.Component", names)
        names = (*names, (kind, spec.name))
        if not is_config_class(spec.config):
            raise _Malformed(f"{kind} '{spec.name}': its config {spec.config!r} is not a class "
                             "made with @attrs.define or @dataclasses.dataclass; decorate it",
                             names)
        if kind != SECTION:
            why = _factory_fits(spec.factory, None, partial=True)  # the config, positionally
            if why:
                signature = BY_NAME[kind].factory.split(" ->")[0]
                raise _Malformed(f"{kind} '{spec.name}': {why}; define it as {signature}",
                                 names)
        return spec

    # ------------------------------------------------------------ the tables

    def _collect(self) -> dict[str, dict[str, Component]]:
        """Every plugin's registrations; a broken installed plugin is turned off, a
        broken explicit one raises."""
        per_plugin: dict[str, list[tuple[str, Any]]] = {}
        for name, plugin in self.plugin_manager.list_name_plugin():
            if plugin is None:  # blocked
                continue
            try:
                per_plugin[name] = self._registrations(name)
            except _Malformed as exc:
                if name in self._explicit:
                    raise RegistryError(f"plugin {self._describe(name)}: {exc.cause}") from None
                self._turn_off(name, self._providers.get(name, "?"), exc.cause, exc.components)
            except Exception as exc:  # noqa: BLE001 (the plugin's own hook failed)
                if name in self._explicit:
                    raise
                self._turn_off(name, self._providers.get(name, "?"),
                               f"a registration hook raised {_one_line(exc)}")
        owners: dict[tuple[str, str], list[str]] = {}
        for name, registrations in per_plugin.items():
            for kind, spec in registrations:
                owners.setdefault((kind, spec.name), []).append(name)
        from jepakit.recipe import Recipe

        for reserved in attrs.fields(Recipe):
            if (SECTION, reserved.name) in owners:
                owners[(SECTION, reserved.name)].insert(0, "")  # "" is jepakit itself
        for (kind, cname), names in owners.items():
            if len(names) > 1:
                self._resolve_duplicate(kind, cname, names, per_plugin)
        table: dict[str, dict[str, Component]] = {kind: {} for kind in NAMES}
        self._sections, self._owners = {}, {}
        for name, registrations in per_plugin.items():
            if not self.plugin_manager.has_plugin(name):  # turned off above
                continue
            provider = self._describe(name)
            for kind, spec in registrations:
                if kind == SECTION:
                    self._sections[spec.name] = attrs.evolve(spec, provider=provider)
                else:
                    table[kind][spec.name] = attrs.evolve(spec, provider=provider)
                    self._owners[(kind, spec.name)] = name
        return table

    def _describe(self, name: str) -> str:
        """``plugin (package version)``; a plugin registered from Python without a name
        (pluggy names it by its id) is described by what it is."""
        provider = self._providers.get(name, "?")
        if name == "":
            return "jepakit"
        return provider if name.isdigit() or name == provider else f"{name} ({provider})"

    def _resolve_duplicate(self, kind: str, cname: str, names: list[str],
                           per_plugin: dict[str, list[tuple[str, Any]]]) -> None:
        """Two plugins register one name: no plugin silently wins (a recipe must mean the
        same on every machine). The installed third-party plugins involved are turned off;
        when the author's own (explicit) plugin or only jepakit's are involved, it raises."""
        shipped = [n for n in names if n == "" or self._distributions.get(n) == SHIPPED_DISTRIBUTION]
        guilty = [n for n in names if n not in shipped]
        if any(n in self._explicit for n in names) or not guilty:
            if kind == SECTION:
                first, *rest = names
                raise RegistryError(f"plugin {' and '.join(self._describe(n) for n in rest)} "
                                    f"claims the recipe section '{cname}', which "
                                    f"{self._describe(first)} owns; rename it")
            raise RegistryError(f"duplicate {kind} '{cname}': registered by "
                                f"{' and by '.join(self._describe(n) for n in names)}; rename one")
        for name in guilty:
            if not self.plugin_manager.has_plugin(name):  # already off
                continue
            others = " and ".join(self._describe(n) for n in names if n != name)
            what = (f"claims the recipe section '{cname}', which {others} owns" if kind == SECTION
                    else f"registers {kind} '{cname}', which {others} also registers")
            self._turn_off(name, self._providers.get(name, "?"), f"it {what}; rename it",
                           tuple((k, s.name) for k, s in per_plugin[name]))

    def _ensure(self) -> dict[str, dict[str, Component]]:
        if self._components is None:
            self._components = self._collect()
        return self._components

    def plugin_of(self, kind: str, name: str) -> str:
        """The name of the plugin that registered component ``kind:name``."""
        self.get(kind, name)
        return self._owners[(kind, name)]

    def package(self, plugin: str) -> str:
        """The distribution that installed ``plugin`` (for one registered from Python,
        what it was registered as)."""
        return self._distributions.get(plugin, self._providers.get(plugin, ""))

    @property
    def broken(self) -> tuple[BrokenPlugin, ...]:
        """The installed plugins that were turned off, and why."""
        self._ensure()
        return tuple(self._broken)

    def sections(self) -> dict[str, Section]:
        """Name -> plugin-owned recipe section."""
        self._ensure()
        return dict(self._sections)

    def components(self, kind: str) -> dict[str, Component]:
        """Name -> Component for one kind."""
        if kind not in BY_NAME:
            raise RegistryError(f"unknown component kind '{kind}'{did_you_mean(kind, NAMES)}")
        return self._ensure()[kind]

    def get(self, kind: str, name: str) -> Component:
        table = self.components(kind)
        if name in table:
            return table[name]
        for broken in self._broken:
            if (kind, name) in broken.components:
                raise RegistryError(f"{kind} '{name}' comes from the {broken.describe()}, "
                                    f"which is off: {broken.cause}")
        valid = ", ".join(sorted(table)) or "none registered"
        close = did_you_mean(name, table)
        unknown = [b for b in self._broken if not b.components]
        if unknown and not close:  # it may be one of theirs: their cause is the news
            causes = "; ".join(f"the {b.describe()}, which may provide it, is off: {b.cause}"
                               for b in unknown)
            raise RegistryError(f"{kind} '{name}' is not registered; {causes}; valid: {valid}")
        disabled = f" ({DISABLE_ENV} turns off: {', '.join(self.disabled)})" \
            if self.disabled and not close else ""
        raise RegistryError(f"unknown {kind} '{name}'{close}; valid: {valid}{disabled}")

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
        component = self.get(kind, name)
        why = _factory_fits(component.factory, config, **context)
        if why:
            raise RegistryError(f"{kind} '{name}' of {component.provider}: {why}; define it as "
                                f"{BY_NAME[kind].factory.split(' ->')[0]}")
        return component.factory(config, **context)

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
