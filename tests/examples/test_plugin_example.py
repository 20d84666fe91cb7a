"""The third-party example package (examples/jepakit-plugin-example): its masker
passes the conformance kit, its loss fits the contract, and a recipe using both
trains, in process and, once installed (``make example-plugin``), through its
entry point and the ``jepakit`` command."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

import jepakit
import jepakit.registry as registry_module
from jepakit.cli import main
from jepakit.contracts import Loss, Masker
from jepakit.masking import MaskingError
from jepakit.testing import check_masker

torch.set_num_threads(1)

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "jepakit-plugin-example"
RECIPE = PACKAGE / "recipes" / "lines_cosine_tiny.yaml"
try:
    import jepakit_plugin_example
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(PACKAGE / "src"))
    import jepakit_plugin_example

SMALL = ["encoder.params.depth=1", "predictor.params.depth=1", "train.steps=2",
         "train.batch_size=4", "data.params.num_samples=8", "logging.every_steps=1",
         "logging.progress=false"]


def _installed() -> bool:
    try:
        metadata.distribution("jepakit-plugin-example")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def registry():
    """The shipped plugins (autoload of third-party ones is off in tests) plus this one."""
    return jepakit.Registry(plugins=[jepakit_plugin_example])


def test_masker_passes_the_conformance_kit(registry):
    check_masker(registry, "lines", max_examples=10)
    params = st.fixed_dictionaries({
        "num_targets": st.integers(1, 5),
        "orientation": st.sampled_from(["rows", "columns", "both"]),
        "context_ratio": st.floats(0.1, 1.0),
    })
    check_masker(registry, "lines", params, max_examples=15)


def test_jepakit_check_passes_every_component(monkeypatch, capsys):
    """`jepakit check` (the first step of docs/plugins.md#checking-your-plugin) on the
    package, with the module registered by hand (it works from the source tree)."""
    monkeypatch.setattr(registry_module, "_default",
                        jepakit.Registry(plugins=[jepakit_plugin_example]))
    assert main(["check", "jepakit_plugin_example"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^masker:lines +pass ", out, re.M) and re.search(r"^loss:cosine +pass ",
                                                                        out, re.M)
    assert out.rstrip().endswith("2 passed, 0 skipped, 0 failed")


def test_the_masker_declares_its_smallest_grid(registry):
    masker = registry.create("masker", "lines", {"num_targets": 2})
    assert masker.conformance == {"min_grid": (3, 3)}
    masker(1, (3, 3), torch.Generator())  # the declared grid works
    with pytest.raises(MaskingError):
        masker(1, (2, 2), torch.Generator())


def test_masker_draws_whole_lines(registry):
    masker = registry.create("masker", "lines", {"num_targets": 2, "orientation": "columns",
                                                 "context_ratio": 0.5})
    assert isinstance(masker, Masker)
    masks = masker(3, (4, 6), torch.Generator().manual_seed(0))
    for t in masks.targets:
        assert t.shape == (3, 4)  # a column of a 4x6 grid
        assert ((t % 6) == (t[:, :1] % 6)).all()  # one column each
    assert masks.context[0].shape == (3, round(0.5 * (24 - 8)))
    with pytest.raises(MaskingError, match="leave none for the context"):
        masker(1, (4, 2), torch.Generator())


def test_loss_is_one_minus_cosine(registry):
    loss = registry.create("loss", "cosine", {"normalize_targets": False})
    assert isinstance(loss, Loss)
    g = torch.Generator().manual_seed(0)
    pred, tgt = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    expected = (1 - F.cosine_similarity(pred, tgt, dim=-1)).mean()
    assert torch.allclose(loss([pred], [tgt]), expected)
    assert float(loss([tgt * 3], [tgt])) == pytest.approx(0.0, abs=1e-6)


def test_recipe_trains_in_process(registry):
    trainer = jepakit.build(RECIPE, SMALL, registry=registry, write_files=False)
    summary = trainer.fit()
    assert summary["steps"] == 2
    assert all(0.0 <= h["loss"] <= 2.0 for h in trainer.history)
    assert trainer.history[-1]["target_tokens"] == 2 * 8  # two lines of the 8x8 grid


@pytest.mark.skipif(not _installed(), reason="jepakit-plugin-example is not installed in this "
                    "environment: run `make example-plugin` (make test does)")
def test_installed_package_trains_through_its_entry_point(tmp_path):
    env = {**os.environ, "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD": "0", "OMP_NUM_THREADS": "1"}
    listing = subprocess.run([sys.executable, "-m", "jepakit.cli", "plugins"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    rows = {tuple(line.split()[:3]) for line in listing.stdout.splitlines()}
    assert ("masker", "lines", "example") in rows and ("loss", "cosine", "example") in rows
    check = subprocess.run([sys.executable, "-m", "jepakit.cli", "check", "jepakit-plugin-example"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "2 passed, 0 skipped, 0 failed" in check.stdout
    run = subprocess.run([sys.executable, "-m", "jepakit.cli", "run", str(RECIPE), "--run-dir",
                          str(tmp_path / "run"), *SMALL], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(0.0 <= r["loss"] <= 2.0 for r in records)
