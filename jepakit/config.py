"""Turn plain data (YAML, overrides, keyword arguments) into typed attrs configs.

A small structurer rather than a general library because the error messages are
the feature: every failure names the key's full path, the value and the type it
expected, and unknown keys get a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs

from jepakit.errors import ConfigError, did_you_mean

T = TypeVar("T")


def is_config_class(tp: Any) -> bool:
    """An attrs class or a dataclass: the two kinds of config class params are checked against."""
    return isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp))


def _required_and_known(cls: type) -> tuple[list[str], list[str]]:
    """(every field name, the names without a default) of an attrs class or dataclass."""
    if attrs.has(cls):
        fields = attrs.fields(cls)  # type: ignore[arg-type]
        return ([f.name for f in fields if f.init],
                [f.name for f in fields if f.init and f.default is attrs.NOTHING])
    dc_fields = [f for f in dataclasses.fields(cls) if f.init]
    return ([f.name for f in dc_fields],
            [f.name for f in dc_fields if f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING])


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple, dict):
        args = get_args(tp)
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    if is_config_class(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _fail(path: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")


def convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``, converting where lossless."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise _fail(path, value, tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        deeper: ConfigError | None = None
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(value, option, path)
            except ConfigError as exc:  # a key inside the value failed: the precise message
                if deeper is None and not str(exc).startswith(f"{path}: "):
                    deeper = exc
                continue
        raise deeper or _fail(path, value, tp)
    if is_config_class(tp):
        return structure(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(path, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise _fail(path, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(path, value, tp)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise _fail(path, value, tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(path, value, tp)
        return tuple(convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        (arg,) = get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise _fail(path, value, tp)
        return [convert(v, arg, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise _fail(path, value, tp)
        return {
            convert(k, key_tp, f"{path}.{k}"): convert(v, val_tp, f"{path}.{k}")
            for k, v in value.items()
        }
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _fail(path, value, tp)


def field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of an attrs class or dataclass (works with ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def structure(cls: type[T], data: Any, path: str = "") -> T:
    """Build ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    where = path or "<root>"
    if data is None:
        data = {}
    if is_config_class(type(data)) and isinstance(data, cls):
        return data
    known, required = _required_and_known(cls)
    if not isinstance(data, dict):
        keys = ", ".join(known) or "none"
        raise ConfigError(f"{where}: expected a mapping (keys: {keys}), got {data!r}")
    hints = field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in known:
            hint = did_you_mean(str(key), known) or f"; valid keys: {', '.join(known) or 'none'}"
            raise ConfigError(f"unknown key '{key_path}'{hint}")
        kwargs[key] = convert(value, hints[key], key_path)
    missing = [name for name in required if name not in kwargs]
    if missing:
        names = ", ".join(f"{path}.{m}" if path else m for m in missing)
        raise ConfigError(f"missing required key(s): {names}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(_validator_message(exc, path)) from None


def _validator_message(exc: Exception, path: str) -> str:
    """attrs validators raise ValueError(msg, attribute, bound, value): name the key."""
    args = exc.args
    if len(args) >= 2 and isinstance(args[1], attrs.Attribute):
        key = f"{path}.{args[1].name}" if path else args[1].name
        if len(args) >= 4 and isinstance(args[2], (list, tuple)):  # validators.in_
            return f"{key}: expected one of {list(args[2])}, got {args[3]!r}"
        return f"{key}: {args[0]}"
    quoted = re.match(r"^'(\w+)' (.*)$", str(exc))  # "'lr' must be > 0: -1.0"
    if quoted:
        key = f"{path}.{quoted.group(1)}" if path else quoted.group(1)
        return f"{key}: {quoted.group(2)}"
    return f"{path or '<root>'}: {exc}"



def unstructure(obj: Any) -> Any:
    """Plain YAML-ready data from an attrs or dataclass instance (tuples become lists)."""
    if attrs.has(type(obj)):
        return {f.name: unstructure(getattr(obj, f.name)) for f in attrs.fields(type(obj))}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: unstructure(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [unstructure(v) for v in obj]
    if isinstance(obj, dict):
        return {k: unstructure(v) for k, v in obj.items()}
    return obj


def check(condition: bool, message: str) -> None:
    """Raise a ConfigError with ``message`` unless ``condition`` holds (for ``__attrs_post_init__``)."""
    if not condition:
        raise ConfigError(message)
