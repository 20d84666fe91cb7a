"""jepakit: a modular PyTorch plugin framework for joint-embedding predictive architectures."""

from jepakit.contracts import Masks
from jepakit.errors import ConfigError, JepakitError, RegistryError
from jepakit.hookspecs import hookimpl
from jepakit.registry import Component, Registry, Section, create, default_registry

__version__ = "0.1.0"


def build(recipe, overrides=(), **kwargs):  # type: ignore[no-untyped-def]
    """Build a ready :class:`jepakit.engine.Trainer` from a recipe path, dict or Recipe."""
    from jepakit.engine import build as _build

    return _build(recipe, overrides, **kwargs)


__all__ = [
    "Component",
    "ConfigError",
    "JepakitError",
    "Masks",
    "Registry",
    "RegistryError",
    "Section",
    "build",
    "create",
    "default_registry",
    "hookimpl",
    "__version__",
]
