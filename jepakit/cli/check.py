"""``jepakit check PACKAGE_OR_NAME``: the conformance kit over a plugin's components.

The target is a plugin (its entry-point name), the package that installs it (distribution
or import name: ``jepakit-plugin-example``, ``jepakit_plugin_example``), one component
(``kind:name``) or a component name registered for one kind only. Each component runs
its kind's check (:func:`jepakit.conformance.check_component`; maskers through
:func:`jepakit.testing.check_masker`); the table says what passed and what failed, with
the kit's message; a broken plugin (one jepakit turned off) is one failed row with its cause.
Exit code 1 when anything failed, 2 for a target that names nothing. A plugin's entry-point
name wins over a component of the same name (``ijepa``): use ``kind:name`` for the component.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from typing import Any

from jepakit.errors import JepakitError, PluginWarning, RegistryError, did_you_mean
from jepakit.kinds import NAMES


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="run the conformance kit over a plugin's components",
                       description="Run jepakit's conformance kit over every component a "
                       "plugin registers: PACKAGE_OR_NAME is its entry-point name, its "
                       "distribution or import name, kind:name, or a component name. "
                       "Exit code 1 when any component fails (docs/plugins.md).")
    p.add_argument("target", metavar="PACKAGE_OR_NAME",
                   help="plugin, package, kind:name, or a component name")
    p.set_defaults(func=check_command)


def _norm(name: str) -> str:
    """Distribution names compare case- and separator-insensitively (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _plugin_packages(registry: Any, plugin: str) -> set[str]:
    """Names a user may know a plugin by: its distribution and its top-level module."""
    names = {_norm(registry.package(plugin))}
    obj = registry.plugin_manager.get_plugin(plugin)
    module = getattr(obj, "__name__", None) or getattr(type(obj), "__module__", "")
    if module:
        names |= {_norm(module), _norm(module.split(".")[0])}
    return names


def broken_targets(registry: Any, target: str) -> list[Any]:
    """The broken (turned-off) plugins ``target`` names, by entry-point or package name."""
    return [b for b in registry.broken
            if target == b.name or _norm(target) == _norm(b.package.rsplit(" ", 1)[0])]


def targets(registry: Any, target: str) -> list[tuple[str, str]]:
    """(kind, name) of each component ``target`` names; RegistryError if none."""
    everything = [(kind, name) for kind in NAMES for name in sorted(registry.components(kind))]
    if ":" in target:
        kind, _, name = target.partition(":")
        registry.get(kind, name)  # unknown kind or name: the registry's one-line error
        return [(kind, name)]
    plugins = [p for p, _ in registry.plugin_manager.list_name_plugin()
               if p == target or _norm(target) in _plugin_packages(registry, p)]
    if plugins:
        found = [(kind, name) for kind, name in everything
                 if registry.plugin_of(kind, name) in plugins]
        if not found:
            raise RegistryError(f"plugin '{target}' registers no components")
        return found
    kinds = [(kind, name) for kind, name in everything if name == target]
    if len(kinds) == 1:
        return kinds
    if kinds:
        raise RegistryError(f"'{target}' names a component of several kinds: "
                            f"{', '.join(f'{k}:{n}' for k, n in kinds)}; name one")
    known = [p for p, _ in registry.plugin_manager.list_name_plugin()] + \
        [name for _, name in everything]
    raise RegistryError(f"'{target}' is no installed plugin, package or component"
                        f"{did_you_mean(target, known)}; see jepakit plugins")


def _run_one(registry: Any, kind: str, name: str) -> tuple[str, str]:
    """(verdict, message) for one component."""
    from jepakit.conformance import CHECKS, check_component

    if kind != "masker" and kind not in CHECKS:
        return "skip", f"the kit has no check for {kind}s"
    try:
        check_component(registry, kind, name)
    except ImportError as exc:  # check_masker needs hypothesis
        return "error", str(exc)
    except (AssertionError, JepakitError) as exc:  # the kit's and the config's messages
        return "FAIL", " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 (the component's own code crashed)
        return "FAIL", " ".join(f"{type(exc).__name__}: {exc}".split())
    return "pass", ""


def check_command(args: argparse.Namespace) -> int:
    from jepakit.registry import default_registry

    with warnings.catch_warnings():  # a broken plugin is reported below if it is the target
        warnings.simplefilter("ignore", PluginWarning)
        registry = default_registry()
        registry.broken  # noqa: B018 (collect, so the warnings fall in this block)
    broken = broken_targets(registry, args.target)
    found = targets(registry, args.target) if not broken else []
    labels = [f"plugin:{b.name}" for b in broken] + [f"{k}:{n}" for k, n in found]
    width = max(len(label) for label in ["component", *labels])
    print(f"{'component'.ljust(width)}  result  seconds  message")
    counts = {"pass": 0, "skip": 0, "FAIL": 0, "error": 0}
    for b in broken:  # it registered nothing: its cause is the one failure to report
        counts["FAIL"] += 1
        print(f"{f'plugin:{b.name}'.ljust(width)}  FAIL    {0:7.1f}  {b.package}: {b.cause}")
    for kind, name in found:
        start = time.perf_counter()
        verdict, message = _run_one(registry, kind, name)
        counts[verdict] += 1
        print(f"{f'{kind}:{name}'.ljust(width)}  {verdict.ljust(6)}  "
              f"{time.perf_counter() - start:7.1f}  {message}".rstrip(), flush=True)
    failed = counts["FAIL"] + counts["error"]
    print(f"{counts['pass']} passed, {counts['skip']} skipped, {failed} failed")
    return 1 if failed else 0
