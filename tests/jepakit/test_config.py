"""The structurer behind recipes and component params: types, paths, messages."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import pytest

from jepakit.config import check, convert, structure, unstructure
from jepakit.errors import ConfigError


@attrs.define
class Inner:
    size: int
    ratio: float = 1.0


@attrs.define
class Outer:
    inner: Inner
    mode: Literal["a", "b"] = "a"
    pair: tuple[float, float] = (0.0, 1.0)
    many: tuple[int, ...] = ()
    names: list[str] = attrs.field(factory=list)
    table: dict[str, int] = attrs.field(factory=dict)
    maybe: int | None = None
    flag: bool = False
    anything: Any = None
    positive: int = attrs.field(default=1, validator=attrs.validators.gt(0))


def test_structure_converts_to_declared_types():
    out = structure(Outer, {
        "inner": {"size": 3.0, "ratio": 2},
        "pair": [1, 2.5],
        "many": [1, 2, 3],
        "names": ("x", "y"),
        "table": {"k": 4},
        "maybe": 7,
        "flag": True,
        "anything": {"free": [1]},
    })
    assert out.inner == Inner(size=3, ratio=2.0)
    assert type(out.inner.size) is int and type(out.inner.ratio) is float
    assert out.pair == (1.0, 2.5) and isinstance(out.pair, tuple)
    assert out.many == (1, 2, 3)
    assert out.names == ["x", "y"]
    assert out.table == {"k": 4}
    assert out.maybe == 7
    assert out.flag is True
    assert out.anything == {"free": [1]}


@attrs.define
class AllDefaults:
    a: int = 3
    b: tuple[float, float] = (0.5, 1.0)


def test_structure_none_means_defaults():
    assert structure(AllDefaults, None, "x") == AllDefaults()
    assert structure(AllDefaults, {}, "x") == AllDefaults(3, (0.5, 1.0))
    with pytest.raises(ConfigError, match=r"missing required key\(s\): sec\.size"):
        structure(Inner, None, "sec")


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        ({"inner": {"size": "3"}}, ["sec.inner.size", "expected int", "'3'"]),
        ({"inner": {"size": True}}, ["sec.inner.size", "expected int", "True"]),
        ({"inner": {"size": 2.5}}, ["sec.inner.size", "expected int", "2.5"]),
        ({"inner": {"size": 1}, "flag": 1}, ["sec.flag", "expected bool", "1"]),
        ({"inner": {"size": 1}, "mode": "c"}, ["sec.mode", "'a' | 'b'", "'c'"]),
        ({"inner": {"size": 1}, "pair": [1]}, ["sec.pair", "tuple[float, float]", "[1]"]),
        ({"inner": {"size": 1}, "pair": [1, "x"]}, ["sec.pair[1]", "expected float", "'x'"]),
        ({"inner": {"size": 1}, "many": 3}, ["sec.many", "tuple[int, ...]"]),
        ({"inner": {"size": 1}, "names": [1]}, ["sec.names[0]", "expected str"]),
        ({"inner": {"size": 1}, "table": {"k": "v"}}, ["sec.table.k", "expected int"]),
        ({"inner": {"size": 1}, "maybe": "x"}, ["sec.maybe", "int | null"]),
        ({"inner": 5}, ["sec.inner", "expected a mapping (keys: size"]),
        ({"inner": {"size": 1}, "positive": 0}, ["sec", "positive"]),
    ],
)
def test_structure_errors_name_key_value_and_type(data, needles):
    with pytest.raises(ConfigError) as info:
        structure(Outer, data, "sec")
    for needle in needles:
        assert needle in str(info.value)


def test_unknown_key_has_full_path_and_suggestion():
    with pytest.raises(ConfigError) as info:
        structure(Outer, {"inner": {"size": 1, "ratoi": 2.0}}, "sec")
    assert "unknown key 'sec.inner.ratoi'" in str(info.value)
    assert "did you mean 'ratio'" in str(info.value)


def test_missing_required_key():
    with pytest.raises(ConfigError, match=r"missing required key\(s\): sec\.inner"):
        structure(Outer, {}, "sec")


def test_float_accepts_yaml11_exponent_strings():
    assert convert("1e-3", float, "x") == pytest.approx(1e-3)
    with pytest.raises(ConfigError):
        convert("abc", float, "x")
    with pytest.raises(ConfigError):
        convert(True, float, "x")


def test_int_accepts_integral_float_only():
    assert convert(4.0, int, "x") == 4
    with pytest.raises(ConfigError):
        convert(float("inf"), int, "x")
    with pytest.raises(ConfigError):
        convert(float("nan"), int, "x")


def test_unstructure_round_trips():
    out = structure(Outer, {"inner": {"size": 2}, "pair": [0.1, 0.2], "many": [3]})
    plain = unstructure(out)
    assert plain["pair"] == [0.1, 0.2] and isinstance(plain["pair"], list)
    assert plain["inner"] == {"size": 2, "ratio": 1.0}
    assert structure(Outer, plain) == out


def test_check():
    check(True, "fine")
    with pytest.raises(ConfigError, match="broken"):
        check(False, "broken")
