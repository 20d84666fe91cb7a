"""Installed plugin packages with registration mistakes beside a good one: each mistake is
one warning naming the plugin, its package and the cause; the good plugin keeps working
(`jepakit plugins`, a run); a recipe naming a broken plugin's component fails with that
cause; JEPAKIT_DISABLE_PLUGINS blocks chosen plugins; `jepakit check` fails a broken loss.

The packages are real distributions (a ``.dist-info`` with ``entry_points.txt`` beside the
module, as pip installs them) in one directory put on ``sys.path`` / ``PYTHONPATH`` for the
whole module: no pip, so the module stays fast."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import jepakit.registry as registry_module
from jepakit.cli import main
from jepakit.errors import ConfigError, PluginWarning, RegistryError
from jepakit.recipe import load_recipe
from jepakit.registry import Registry

GOOD = '''
import dataclasses

import torch

import jepakit


@dataclasses.dataclass
class StripesConfig:
    """A dataclass config: accepted like an attrs class."""
    width: int = 1
    context_ratio: float = 0.5

    def __post_init__(self):
        if self.width < 1:
            raise ValueError("width must be >= 1")


class Stripes:
    """Targets: one random column band of `width` columns; context: half of the rest."""

    def __init__(self, config):
        self.config = config

    def __call__(self, batch_size, patch_grid, generator):
        h, w = patch_grid
        width = min(self.config.width, w - 1)
        if width < 1:
            raise jepakit.masking.MaskingError("the grid has one column")
        start = torch.randint(0, w - width + 1, (batch_size, 1), generator=generator)
        cols = start + torch.arange(width)                                   # [B, width]
        target = (torch.arange(h)[None, :, None] * w + cols[:, None, :]).flatten(1)
        scores = torch.rand(batch_size, h * w, generator=generator)
        scores.scatter_(1, target, 2.0)  # never drawn for the context
        k = max(1, round(self.config.context_ratio * (h * w - target.shape[1])))
        context = scores.argsort(dim=1)[:, :k].sort(dim=1).values
        return jepakit.Masks(context=[context], targets=[target.sort(dim=1).values])


@jepakit.hookimpl
def jepakit_maskers():
    return [jepakit.Component("stripes", Stripes, StripesConfig)]
'''

ZERO_LOSS = '''
import attrs
import torch

import jepakit


@attrs.define
class ZeroConfig:
    pass


class Zero:
    """A broken loss: a constant, so no gradient reaches the predictions."""

    def __init__(self, config):
        self.config = config

    def __call__(self, predictions, targets):
        return torch.zeros(())


@jepakit.hookimpl
def jepakit_losses():
    return [jepakit.Component("zero", Zero, ZeroConfig)]
'''

IMPORT_ERROR = '''
import jepakit_no_such_dependency  # noqa: F401
'''

DUPLICATE = '''
import attrs

import jepakit


@attrs.define
class Config:
    pass


def make(config):
    return config


@jepakit.hookimpl
def jepakit_maskers():
    return [jepakit.Component("multiblock", make, Config),
            jepakit.Component("dup_only", make, Config)]
'''

BARE = '''
import attrs

import jepakit


@attrs.define
class Config:
    pass


def make(config):
    return config


@jepakit.hookimpl
def jepakit_losses():
    return jepakit.Component("bare_loss", make, Config)
'''

MISSPELT = '''
import jepakit


@jepakit.hookimpl
def jepakit_masker():
    return [jepakit.Component("misspelt_mask", lambda config: None, dict)]
'''

# (distribution, entry-point name, module, source)
PACKAGES = [
    ("jepakit-stripes", "stripes", "jepakit_stripes", GOOD),
    ("jepakit-zero-loss", "zero", "jepakit_zero_loss", ZERO_LOSS),
    ("jepakit-needs-more", "needsmore", "jepakit_needs_more", IMPORT_ERROR),
    ("jepakit-dup", "dup", "jepakit_dup", DUPLICATE),
    ("jepakit-bare", "bare", "jepakit_bare", BARE),
    ("jepakit-misspelt", "misspelt", "jepakit_misspelt", MISSPELT),
]

# what each broken one's warning must say (after "<plugin> (<package> 0.1) is off: ")
CAUSES = {
    "needsmore": r"importing jepakit_needs_more failed: ModuleNotFoundError: No module "
                 r"named 'jepakit_no_such_dependency'",
    "dup": r"it registers masker 'multiblock', which ijepa \(jepakit [^)]*\) also registers; "
           r"rename it",
    "bare": r"jepakit_losses must return a list of jepakit.Component, got Component; "
            r"wrap it in a list",
    "misspelt": r"it implements 'jepakit_masker', which is not a jepakit hook \(did you mean "
                r"'jepakit_maskers'\?\); rename it",
}
BROKEN = {ep: dist for dist, ep, _, _ in PACKAGES if ep in CAUSES}

SMALL = ["masker.name=stripes", "masker.params={width: 2}", "encoder.params.depth=1",
         "predictor.params.depth=1", "train.steps=2", "train.batch_size=4",
         "data.params.num_samples=8", "logging.every_steps=1", "logging.progress=false"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The six packages, installed as distributions in one directory on sys.path."""
    root = tmp_path_factory.mktemp("site")
    for dist, ep, module, source in PACKAGES:
        (root / module).mkdir()
        (root / module / "__init__.py").write_text(textwrap.dedent(source))
        info = root / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[jepakit]\n{ep} = {module}\n")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for _, _, module, _ in PACKAGES:
        sys.modules.pop(module, None)


@pytest.fixture()
def autoload(site, monkeypatch):
    """Third-party autoload on, a fresh process-wide registry, nothing disabled."""
    monkeypatch.setenv("JEPAKIT_DISABLE_PLUGIN_AUTOLOAD", "0")
    monkeypatch.delenv("JEPAKIT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(registry_module, "_default", None)
    return site


def _registry() -> tuple[Registry, list[str]]:
    with pytest.warns(PluginWarning) as caught:
        registry = Registry()
        registry.broken  # noqa: B018 (collects, so every warning falls in this block)
    return registry, [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


@pytest.mark.parametrize("plugin", sorted(CAUSES))
def test_each_mistake_is_one_warning_naming_plugin_package_and_cause(autoload, plugin):
    registry, messages = _registry()
    mine = [m for m in messages if m.startswith(f"jepakit plugin '{plugin}' ")]
    assert len(mine) == 1, messages
    assert "\n" not in mine[0]
    assert re.match(rf"jepakit plugin '{plugin}' \({BROKEN[plugin]} 0\.1\) is off: "
                    rf"{CAUSES[plugin]}", mine[0]), mine[0]
    assert f"JEPAKIT_DISABLE_PLUGINS={plugin} silences this" in mine[0]
    assert {b.name for b in registry.broken} == set(CAUSES)


def test_only_the_first_rank_warns_and_every_rank_knows(autoload, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # a second torchrun process
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        registry = Registry()
        assert {b.name for b in registry.broken} == set(CAUSES)


def test_the_good_plugin_and_the_shipped_ones_keep_working(autoload):
    registry, _ = _registry()
    assert registry.get("masker", "stripes").provider == "stripes (jepakit-stripes 0.1)"
    assert "ijepa (jepakit" in registry.get("masker", "multiblock").provider
    masker = registry.create("masker", "stripes", {"width": 3})  # a dataclass config
    masks = masker(2, (4, 5), __import__("torch").Generator().manual_seed(0))
    assert masks.targets[0].shape == (2, 12)
    assert registry.resolved_params("masker", "stripes", {}) == {"width": 1, "context_ratio": 0.5}
    with pytest.raises(ConfigError, match=r"masker.params: width must be >= 1"):
        registry.create("masker", "stripes", {"width": 0})
    with pytest.raises(ConfigError, match=r"unknown key 'masker.params.spacing'; valid keys: "
                                          r"width, context_ratio$"):
        registry.create("masker", "stripes", {"spacing": 2})


@pytest.mark.parametrize(("override", "message"), [
    ("masker.name=dup_only", r"masker.name: masker 'dup_only' comes from the jepakit plugin "
                             r"'dup' \(jepakit-dup 0\.1\), which is off: it registers masker "
                             r"'multiblock'"),
    ("loss.name=bare_loss", r"loss.name: loss 'bare_loss' comes from the jepakit plugin 'bare' "
                            r"\(jepakit-bare 0\.1\), which is off: jepakit_losses must return"),
    ("masker.name=misspelt_mask", r"masker.name: masker 'misspelt_mask' comes from the jepakit "
                                  r"plugin 'misspelt' \(jepakit-misspelt 0\.1\), which is off: "
                                  r"it implements 'jepakit_masker'"),
    ("masker.name=needed", r"masker.name: masker 'needed' is not registered; the jepakit plugin "
                           r"'needsmore' \(jepakit-needs-more 0\.1\), which may provide it, is "
                           r"off: importing jepakit_needs_more failed"),
])
def test_a_recipe_naming_a_broken_plugins_component_fails_with_its_cause(
        autoload, tiny_recipe, override, message):
    registry, _ = _registry()
    with pytest.raises(ConfigError, match=message):
        load_recipe(tiny_recipe, [override], registry)


def test_disable_plugins_blocks_chosen_plugins(autoload, monkeypatch, tiny_recipe):
    monkeypatch.setenv("JEPAKIT_DISABLE_PLUGINS", "dup, needsmore,bare,misspelt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)  # nothing left to warn about
        registry = Registry()
        assert registry.broken == ()
    assert registry.disabled == ("dup", "needsmore", "bare", "misspelt")
    assert "stripes" in registry.components("masker")
    with pytest.raises(RegistryError, match=r"unknown masker 'dup_only'; valid: .*"
                                            r"\(JEPAKIT_DISABLE_PLUGINS turns off: dup, "):
        registry.get("masker", "dup_only")
    load_recipe(tiny_recipe, SMALL, registry)
    # an entry-point name that is no plugin is worth a warning (a typo blocks nothing)
    monkeypatch.setenv("JEPAKIT_DISABLE_PLUGINS", "stripe")
    with pytest.warns(PluginWarning) as caught:
        Registry()
    assert any(re.fullmatch(r"JEPAKIT_DISABLE_PLUGINS names 'stripe', which is no installed "
                            r"jepakit plugin \(did you mean 'stripes'\?\); installed: .*",
                            str(w.message)) for w in caught)


def test_jepakit_plugins_lists_the_good_and_the_broken(autoload, capsys):
    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"^masker +stripes +stripes \(jepakit-stripes 0\.1\)$", out, re.M)
    listing = out.split("broken plugins", 1)[1]
    for plugin, dist in BROKEN.items():
        assert re.search(rf"^{plugin} +{dist} 0\.1 +", listing, re.M), listing
    assert "importing jepakit_needs_more failed" in listing
    assert err == ""  # listed, not warned


def test_jepakit_check_passes_a_good_masker_and_fails_a_broken_loss(autoload, capsys):
    assert main(["check", "jepakit-stripes"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^masker:stripes +pass ", out, re.M)
    assert main(["check", "zero"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^loss:zero +FAIL .*loss 'zero': no gradient reaches its inputs", out, re.M)
    assert "0 passed, 0 skipped, 1 failed" in out
    assert main(["check", "jepakit-dup"]) == 1  # a broken plugin: one failed row, its cause
    assert re.search(r"^plugin:dup +FAIL .*jepakit-dup 0\.1: it registers masker 'multiblock'",
                     capsys.readouterr().out, re.M)
    assert main(["check", "loss:zer"]) == 2
    assert "did you mean 'zero'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_of_the_good_plugin_works_beside_the_broken(site, tmp_path, tiny_recipe):
    """The path a user takes: a fresh process, every plugin installed, autoload on."""
    env = {**os.environ, "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD": "0", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("JEPAKIT_DISABLE_PLUGINS", None)
    run = subprocess.run([sys.executable, "-m", "jepakit.cli", "run", str(tiny_recipe),
                          "--run-dir", str(tmp_path / "run"), *SMALL], env=env,
                         capture_output=True, text=True, timeout=300, cwd=Path(tmp_path))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2
    warned = [line for line in run.stderr.splitlines() if line.startswith("jepakit: warning:")]
    assert sorted(re.findall(r"jepakit plugin '(\w+)'", " ".join(warned))) == sorted(CAUSES)
    assert "Traceback" not in run.stderr
