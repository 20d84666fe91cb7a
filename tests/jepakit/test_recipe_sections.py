"""Plugin-owned recipe sections: a plugin declares a top-level section and its config
class; the recipe checks it, overrides reach it, and it round-trips through YAML."""

from __future__ import annotations

import re

import attrs
import pytest
import yaml

import jepakit
from jepakit.errors import ConfigError, RegistryError
from jepakit.recipe import dump_recipe, load_recipe
from jepakit.registry import Registry


@attrs.define
class WatchConfig:
    every: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    label: str = "w"


class WatchPlugin:
    @jepakit.hookimpl
    def jepakit_recipe_sections(self):
        return [jepakit.Section("watch", WatchConfig)]


class Squatter:
    @jepakit.hookimpl
    def jepakit_recipe_sections(self):
        return [jepakit.Section("train", WatchConfig)]


def test_a_plugin_section_is_checked_overridden_and_round_trips(tiny_recipe):
    registry = Registry(plugins=[WatchPlugin()])
    recipe = load_recipe(tiny_recipe, ["watch.every=7", "monitors.aim=false"], registry)
    assert recipe.section("watch") == WatchConfig(every=7)
    assert recipe.section("monitors").aim is False  # the shipped monitors plugin's section
    again = load_recipe(yaml.safe_load(dump_recipe(recipe)), (), registry)
    assert again.section("watch") == WatchConfig(every=7)
    assert yaml.safe_load(dump_recipe(recipe))["watch"] == {"every": 7, "label": "w"}
    assert load_recipe(tiny_recipe, (), registry).section("watch") == WatchConfig()  # defaults


@pytest.mark.parametrize(("override", "message"), [
    ("watch.evry=3", "unknown key 'watch.evry' (did you mean 'every'?)"),
    ("watch.every=0", "watch.every"),
    ("logging.aim=false", "unknown key 'logging.aim'"),  # moved to the monitors section
])
def test_plugin_section_mistakes_name_the_key(tiny_recipe, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(tiny_recipe, [override], Registry(plugins=[WatchPlugin()]))


def test_a_plugin_cannot_take_an_engine_section(tiny_recipe):
    with pytest.raises(RegistryError, match="claims the recipe section 'train'"):
        load_recipe(tiny_recipe, (), Registry(plugins=[Squatter()]))
