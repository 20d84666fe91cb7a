"""The registry: entry-point discovery, duplicate and unknown names, param validation,
and a third-party plugin installed as a distribution this repository knows nothing of."""

from __future__ import annotations

import importlib
import sys
import textwrap

import attrs
import pytest
import torch

import jepakit
import jepakit.registry as registry_module
from jepakit.errors import ConfigError, RegistryError
from jepakit.recipe import load_recipe
from jepakit.registry import Component, Registry

SHIPPED = {
    "encoder": {"vit"},
    "masker": {"multiblock"},
    "predictor": {"ijepa"},
    "target_updater": {"ema"},
    "loss": {"smooth_l1", "l2"},
    "dataset": {"synthetic", "webdataset"},
}


def test_shipped_plugins_are_found_through_entry_points(registry):
    for kind, names in SHIPPED.items():
        found = registry.components(kind)
        assert names <= set(found), kind
        for component in found.values():
            assert "jepakit" in component.provider
            assert attrs.has(component.config)


def test_shipped_plugins_come_only_from_entry_points():
    # The engine never imports the plugin packages by name: no entry points, no components.
    bare = Registry(entry_points=False)
    for kind in SHIPPED:
        assert bare.components(kind) == {}


def test_provider_names_plugin_and_distribution(registry):
    assert registry.get("encoder", "vit").provider.startswith("ijepa (jepakit ")
    assert registry.get("dataset", "synthetic").provider.startswith("data (jepakit ")


class _DuplicateViT:
    @jepakit.hookimpl
    def jepakit_encoders(self):
        return [Component("vit", lambda config: None, _EmptyConfig)]


@attrs.define
class _EmptyConfig:
    width: int = 8


def test_duplicate_name_names_both_providers():
    reg = Registry()
    reg.register(_DuplicateViT(), name="copycat", provider="copycat-dist 9.9")
    with pytest.raises(RegistryError) as info:
        reg.components("encoder")
    message = str(info.value)
    assert "duplicate encoder 'vit'" in message
    assert "ijepa (jepakit" in message
    assert "copycat (copycat-dist 9.9)" in message


def test_duplicate_through_constructor_plugins():
    with pytest.raises(RegistryError, match="duplicate encoder 'vit'"):
        Registry(plugins=[_DuplicateViT()]).get("encoder", "vit")


def test_registering_same_plugin_twice_is_an_error(registry):
    plugin = _DuplicateViT()
    registry.register(plugin, name="once")
    with pytest.raises(RegistryError, match="once"):
        registry.register(plugin, name="once")
    with pytest.raises(RegistryError):
        registry.register(plugin, name="twice")  # same object, other name


class _NotAComponent:
    @jepakit.hookimpl
    def jepakit_losses(self):
        return ["not a component"]


def test_hook_returning_non_component_is_an_error():
    with pytest.raises(RegistryError, match="_NotAComponent object: jepakit_losses returned "
                                            "'not a component'; expected jepakit.Component"):
        Registry(plugins=[_NotAComponent()])


def test_unknown_name_lists_valid_names_and_suggests(registry):
    with pytest.raises(RegistryError) as info:
        registry.get("masker", "multiblok")
    message = str(info.value)
    assert "unknown masker 'multiblok'" in message
    assert "did you mean 'multiblock'" in message
    valid = message.split("valid: ", 1)[1].split(", ")
    assert "multiblock" in valid and valid == sorted(valid)


def test_unknown_name_without_close_match_still_lists_valid(registry):
    with pytest.raises(RegistryError) as info:
        registry.get("loss", "zzzzzz")
    message = str(info.value)
    assert "did you mean" not in message
    assert {"l2", "smooth_l1"} <= set(message.split("valid: ", 1)[1].split(", "))


def test_unknown_kind(registry):
    with pytest.raises(RegistryError, match="did you mean 'masker'"):
        registry.components("maskers")


def test_create_builds_with_validated_params(registry):
    masker = registry.create("masker", "multiblock", {"num_targets": 2, "target_scale": [0.1, 0.2]})
    assert masker.config.num_targets == 2
    assert masker.config.target_scale == (0.1, 0.2)  # list converted to the field's tuple
    masks = masker(3, (8, 8), torch.Generator().manual_seed(0))
    assert len(masks.targets) == 2


def test_create_unknown_param_names_key_path(registry):
    with pytest.raises(ConfigError) as info:
        registry.create("masker", "multiblock", {"num_target": 2})
    message = str(info.value)
    assert "masker.params.num_target" in message
    assert "did you mean 'num_targets'" in message


def test_create_unknown_param_uses_given_path(registry):
    with pytest.raises(ConfigError, match=r"unknown key 'encoder\.params\.widht'"):
        registry.create("encoder", "vit", {"widht": 3}, path="encoder.params")


def test_create_wrong_type_names_key_value_and_type(registry):
    with pytest.raises(ConfigError) as info:
        registry.create("masker", "multiblock", {"num_targets": "two"})
    message = str(info.value)
    assert "masker.params.num_targets" in message
    assert "'two'" in message
    assert "expected int" in message


def test_create_invalid_value_is_config_error(registry):
    with pytest.raises(ConfigError, match="masker.params"):
        registry.create("masker", "multiblock", {"num_targets": 0})
    with pytest.raises(ConfigError, match="target_scale"):
        registry.create("masker", "multiblock", {"target_scale": [0.3, 0.1]})


def test_resolved_params_fill_defaults(registry):
    params = registry.resolved_params("loss", "smooth_l1", {})
    assert params == {"normalize_targets": True}


def test_front_door_create():
    masker = jepakit.create("masker", "multiblock", num_targets=3)
    assert masker.config.num_targets == 3
    with pytest.raises(ConfigError, match="num_targetz"):
        jepakit.create("masker", "multiblock", num_targetz=3)


# ---------------------------------------------------------------- third-party plugin

FAKE_PLUGIN = textwrap.dedent(
    '''
    """A third-party jepakit plugin: one masker, 'everything'."""

    import attrs
    import torch

    import jepakit


    @attrs.define
    class EverythingConfig:
        num_targets: int = attrs.field(default=1, validator=attrs.validators.gt(0))


    class Everything:
        """One random patch per target, every other patch in the context."""

        def __init__(self, config):
            self.config = config

        def __call__(self, batch_size, patch_grid, generator):
            n = patch_grid[0] * patch_grid[1]
            order = torch.rand(batch_size, n, generator=generator).argsort(dim=1)
            k = self.config.num_targets
            targets = [order[:, j:j + 1] for j in range(k)]
            return jepakit.Masks(context=[order[:, k:].sort(dim=1).values], targets=targets)


    @jepakit.hookimpl
    def jepakit_maskers():
        return [jepakit.Component("everything", Everything, EverythingConfig)]
    '''
)


def _install_fake(tmp_path, monkeypatch, entry_point_name):
    (tmp_path / "fake_jepakit_plugin").mkdir()
    (tmp_path / "fake_jepakit_plugin" / "__init__.py").write_text(FAKE_PLUGIN)
    dist_info = tmp_path / "fake_jepakit_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-jepakit-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[jepakit]\n{entry_point_name} = fake_jepakit_plugin\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("JEPAKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    # Keep the process-wide registry out of it: anything built here is thrown away.
    monkeypatch.setattr(registry_module, "_default", None)
    monkeypatch.delitem(sys.modules, "fake_jepakit_plugin", raising=False)
    importlib.invalidate_caches()


@pytest.fixture()
def fake_distribution(tmp_path, monkeypatch):
    """Install ``fake_jepakit_plugin`` as a distribution on sys.path (not via this repo)."""
    _install_fake(tmp_path, monkeypatch, "fake")
    yield tmp_path
    sys.modules.pop("fake_jepakit_plugin", None)


def test_third_party_plugin_is_found(fake_distribution):
    reg = Registry()
    maskers = reg.components("masker")
    assert {"multiblock", "everything"} <= set(maskers)
    provider = maskers["everything"].provider
    assert provider == "fake (fake-jepakit-plugin 0.1)"
    # The shipped ones are still there.
    assert "vit" in reg.components("encoder")


def test_third_party_plugin_in_a_recipe(fake_distribution, tiny_recipe):
    reg = Registry()
    recipe = load_recipe(tiny_recipe, ["masker.name=everything", "masker.params={}"], registry=reg)
    assert recipe.masker.name == "everything"
    assert recipe.masker.params == {"num_targets": 1}
    recipe = load_recipe(
        tiny_recipe,
        ["masker.name=everything", "masker.params={}", "masker.params.num_targets=2"],
        registry=reg,
    )
    assert recipe.masker.params == {"num_targets": 2}
    with pytest.raises(ConfigError, match="masker.params.num_targets"):
        load_recipe(tiny_recipe, ["masker.name=everything", "masker.params={num_targets: x}"],
                    registry=reg)


def test_third_party_masker_trains(fake_distribution, tiny_recipe):
    reg = Registry()
    trainer = jepakit.build(
        tiny_recipe,
        [
            "masker.name=everything", "masker.params={num_targets: 2}",
            "encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
            "predictor.params.embed_dim=16", "predictor.params.depth=1",
            "predictor.params.num_heads=2", "train.batch_size=4", "train.steps=2",
            "logging.every_steps=1", "logging.progress=false", "monitors.probe_samples=0", "data.params.num_samples=8",
        ],
        registry=reg,
        write_files=False,
    )
    summary = trainer.fit()
    assert summary["steps"] == 2
    n = trainer.model.encoder.patch_grid[0] * trainer.model.encoder.patch_grid[1]
    assert trainer.history[-1]["context_tokens"] == n - 2  # every patch but the 2 targets
    assert trainer.history[-1]["target_tokens"] == 2


def test_autoload_disabled_skips_third_party(fake_distribution, monkeypatch):
    monkeypatch.setenv("JEPAKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()
    assert "multiblock" in reg.components("masker")
    assert "everything" not in reg.components("masker")
    with pytest.raises(RegistryError, match="valid: .*multiblock"):
        reg.get("masker", "everything")


def test_entry_point_name_clash_is_not_silent(tmp_path, monkeypatch):
    """A third-party entry point named like a shipped one ('ijepa') must not silently
    hide it (or be hidden by it) depending on sys.path order: the shipped one stays, the
    third-party one is turned off with a warning naming both packages."""
    _install_fake(tmp_path, monkeypatch, "ijepa")
    try:
        with pytest.warns(jepakit.errors.PluginWarning) as caught:
            reg = Registry()
        message = str(caught[0].message)
        assert "'ijepa' (fake-jepakit-plugin 0.1) is off" in message
        assert "jepakit 0." in message and "uninstall one" in message
        assert "vit" in reg.components("encoder")
        assert "everything" not in reg.components("masker")
    finally:
        sys.modules.pop("fake_jepakit_plugin", None)


def test_broken_entry_point_is_turned_off_with_a_warning(tmp_path, monkeypatch):
    _install_fake(tmp_path, monkeypatch, "broken")
    (tmp_path / "fake_jepakit_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[jepakit]\nbroken = no_such_module_for_jepakit\n"
    )
    with pytest.warns(jepakit.errors.PluginWarning, match=r"'broken' \(fake-jepakit-plugin "
                      r"0.1\) is off: importing no_such_module_for_jepakit failed: "
                      r"ModuleNotFoundError"):
        reg = Registry()
    assert [b.name for b in reg.broken] == ["broken"]
    assert "multiblock" in reg.components("masker")


def test_a_misspelt_hook_name_is_an_error_not_silence():
    """pluggy's check_pending: `jepakit_masker` (no s) matches no hook spec."""

    class Misspelt:
        @jepakit.hookimpl
        def jepakit_masker(self):
            return []

    with pytest.raises(jepakit.RegistryError,
                       match=r"implements 'jepakit_masker', which is not a jepakit hook "
                             r"\(did you mean 'jepakit_maskers'\?\)"):
        Registry(plugins=[Misspelt()])


def test_a_bare_component_instead_of_a_list_is_a_one_line_error():
    class Bare:
        @jepakit.hookimpl
        def jepakit_losses(self):
            return jepakit.Component("bare", object, object)

    with pytest.raises(jepakit.RegistryError, match="must return a list of jepakit.Component"):
        Registry(plugins=[Bare()])


def test_every_kind_has_its_generated_registration_hook():
    from jepakit.kinds import KINDS

    hooks = Registry().plugin_manager.hook
    for kind in KINDS:
        assert getattr(hooks, kind.hook).spec is not None, kind.hook
        assert kind.example.split("(")[0] in getattr(hooks, kind.hook).spec.function.__doc__


# ---------------------------------------------------------------- author mistakes, from Python


def _plugin(hook: str, *components):
    """A plugin object whose ``hook`` returns ``components``."""
    return type("AuthorPlugin", (), {hook: jepakit.hookimpl(lambda self: list(components))})()


def test_a_dataclass_config_class_is_accepted():
    import dataclasses

    @dataclasses.dataclass
    class BandConfig:
        width: int = 2
        ratio: float = 0.5

    reg = Registry(plugins=[_plugin("jepakit_losses", Component("band", lambda c: c, BandConfig))])
    assert reg.create("loss", "band", {"width": 3}) == BandConfig(width=3, ratio=0.5)
    assert reg.resolved_params("loss", "band", {"ratio": 1}) == {"width": 2, "ratio": 1.0}
    with pytest.raises(ConfigError, match=r"loss.params.width: expected int, got 'x'"):
        reg.create("loss", "band", {"width": "x"})


def test_a_config_that_is_no_config_class_is_one_line_naming_the_fix():
    with pytest.raises(RegistryError, match=r"plugin AuthorPlugin object: loss 'plain': its "
                                            r"config <class 'dict'> is not a class made with "
                                            r"@attrs.define or @dataclasses.dataclass"):
        Registry(plugins=[_plugin("jepakit_losses", Component("plain", lambda c: c, dict))])


def test_a_factory_that_cannot_take_the_config_is_named_at_registration():
    def no_config():
        return None

    with pytest.raises(RegistryError, match=r"loss 'nocfg': its factory .*no_config\(\) cannot "
                                            r"be called so .*; define it as factory\(config\)"):
        Registry(plugins=[_plugin("jepakit_losses", Component("nocfg", no_config, _EmptyConfig))])


def test_a_factory_without_the_engines_context_is_named_when_built():
    def predictor(config):  # forgot `*, embed_dim, patch_grid`
        return None

    reg = Registry(plugins=[_plugin("jepakit_predictors",
                                    Component("p", predictor, _EmptyConfig))])
    with pytest.raises(RegistryError, match=r"predictor 'p' of AuthorPlugin object: its factory "
                                            r".*predictor\(config\) cannot be called so "
                                            r"\(got an unexpected keyword argument 'embed_dim'\); "
                                            r"define it as factory\(config, \*, embed_dim, "
                                            r"patch_grid\)"):
        reg.create("predictor", "p", {}, embed_dim=8, patch_grid=(2, 2))


def test_a_hook_with_a_wrong_signature_is_one_line():
    class Wrong:
        @jepakit.hookimpl
        def jepakit_losses(self, config):
            return []

    with pytest.raises(RegistryError) as info:
        Registry(plugins=[Wrong()])
    assert "a hook implementation does not fit its hook" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_duplicate_names_its_kind_not_the_first_recipe_section(tiny_recipe):
    copycat = _plugin("jepakit_maskers", Component("multiblock", lambda c: c, _EmptyConfig))
    with pytest.raises(RegistryError, match=r"^duplicate masker 'multiblock': registered by "
                                            r"ijepa \(jepakit .*\) and by AuthorPlugin object"):
        load_recipe(tiny_recipe, (), Registry(plugins=[copycat]))


def test_a_section_given_a_bare_name_says_how_to_name_a_component(tiny_recipe, registry):
    with pytest.raises(ConfigError, match=r"^masker: expected a section \{name: \.\.\., params: "
                                          r"\{\.\.\.\}\}, got 'stripes'; to pick a component "
                                          r"write 'masker: \{name: stripes\}' or override "
                                          r"masker.name=stripes$"):
        load_recipe(tiny_recipe, ["masker=stripes"], registry)


def test_an_unknown_param_without_a_close_match_lists_the_valid_keys(registry):
    with pytest.raises(ConfigError, match=r"^unknown key 'masker.params.band_width'; valid keys: "
                                          r"num_targets, target_scale, .*allow_overlap"):
        registry.create("masker", "multiblock", {"band_width": 2})


def test_an_explicit_plugin_whose_hook_raises_keeps_its_traceback_and_is_not_left_registered():
    class Raises:
        @jepakit.hookimpl
        def jepakit_losses(self):
            raise ZeroDivisionError("the author's bug")

    reg = Registry()
    with pytest.raises(ZeroDivisionError, match="the author's bug"):
        reg.register(Raises(), name="raises")
    assert not reg.plugin_manager.has_plugin("raises")
    assert "smooth_l1" in reg.components("loss")
    assert reg.plugin_of("loss", "smooth_l1") == "ijepa"


def test_the_masker_kit_reads_a_dataclass_config_too():
    import dataclasses

    from jepakit.testing import expectations

    @dataclasses.dataclass
    class OverlapConfig:
        allow_overlap: bool = True
        target_scale: tuple[float, float] = (0.1, 0.2)

    class Overlapping:
        config = OverlapConfig()

    expect = expectations(Overlapping())
    assert expect.disjoint is False and expect.target_scale == (0.1, 0.2)
