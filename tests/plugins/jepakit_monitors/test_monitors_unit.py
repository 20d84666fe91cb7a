"""Collapse monitors, their cadence, loss.png and the aim tracker's failure handling."""

from __future__ import annotations

import io
import logging

import jepakit_monitors as monitors
import pytest
import torch
from jepakit_monitors import aim_run
from jepakit_monitors.collapse import collapse_metrics, collapse_signs, normalised_std
from jepakit_monitors.curves import draw_curves, write_loss_png
from monitorkit import TINY, TINY_MODEL
from PIL import Image

from jepakit.contracts import StepOutputs
from jepakit.data.loader import Batch
from jepakit.method import build_method
from jepakit.recipe import load_recipe
from jepakit.registry import Registry


@pytest.mark.parametrize(("step", "every", "log_every", "expected"), [
    (100, 100, 10, True), (90, 100, 10, False), (105, 100, 10, False), (105, 100, 7, True), (110, 100, 10, False),
    (25, 20, 10, False), (20, 20, 10, True), (7, 0, 1, False), (3, 1, 1, True),
])
def test_due_only_when_a_multiple_was_crossed(step, every, log_every, expected):
    assert monitors.due(step, every, log_every) is expected


def test_normalised_std_is_one_for_isotropic_and_zero_for_identical():
    g = torch.Generator().manual_seed(0)
    assert normalised_std(torch.randn(4000, 64, generator=g)) == pytest.approx(1.0, abs=0.05)
    assert normalised_std(torch.ones(100, 64)) == pytest.approx(0.0, abs=1e-6)


def _model():
    recipe = load_recipe(TINY, TINY_MODEL, Registry())
    torch.manual_seed(0)
    model, masker = build_method(recipe, Registry(), "cpu")
    masks = masker(8, model.encoder.patch_grid, torch.Generator().manual_seed(0))
    return model, masks


def _outputs(model, masks):
    """The method's own outputs of one step: what the monitors read."""
    batch = Batch(images=torch.randn(8, 3, 16, 16), labels=None, masks=masks)
    return model(batch, 0).outputs


def test_healthy_random_model_shows_no_collapse():
    model, masks = _model()
    m = collapse_metrics(_outputs(model, masks))
    assert set(m) == {"rankme", "target_std", "pred_std", "pred_target_cos", "content_share"}
    assert m["rankme"] > 5 and m["target_std"] > 0.2 and -1 <= m["pred_target_cos"] <= 1
    assert collapse_signs(m, 32) == []


def test_without_predictions_the_embeddings_give_rankme():
    collapsed = StepOutputs(embeddings=[torch.ones(16, 32), torch.ones(16, 32)])
    healthy = StepOutputs(embeddings=[torch.randn(16, 32), torch.randn(16, 32)])
    assert set(collapse_metrics(healthy)) == {"rankme"}
    assert collapse_metrics(healthy)["rankme"] > 10 > collapse_metrics(collapsed)["rankme"]


def test_collapsed_target_is_flagged():
    model, masks = _model()
    with torch.no_grad():  # every token the same vector: complete collapse
        for p in model.target_encoder.parameters():
            p.zero_()
        model.target_encoder.norm.bias.fill_(1.0)
        model.target_encoder.norm.bias[0] = 3.0
    m = collapse_metrics(_outputs(model, masks))
    assert m["rankme"] < 1.5 and m["target_std"] < 0.01
    signs = collapse_signs(m, 32)
    assert any("effective rank" in s for s in signs) and any("targets" in s for s in signs)


def test_loss_curve_png(tmp_path):
    records = [{"step": s, "loss": 1.0 / s, "rankme": 10 + s % 3} for s in range(1, 60)]
    image = draw_curves(records, "title")
    assert image is not None and image.height > 400  # two panels
    assert draw_curves([{"step": 1, "lr": 0.1}]) is None
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n'
                                            '{"step": 3, "lo')  # torn last line
    path = write_loss_png(tmp_path, "run")
    assert path is not None and Image.open(path).format == "PNG"
    assert write_loss_png(tmp_path / "missing") is None


def test_aim_failure_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(aim_run.AimTracker, "_open", staticmethod(broken))
    with caplog.at_level(logging.WARNING, logger="jepakit"):
        tracker = aim_run.AimTracker(tmp_path / "repo", "exp", "name")
    assert not tracker.active and "disk on fire" in caplog.text
    tracker.track({"loss": 1.0}, 1)  # no-ops
    tracker.image(Image.new("RGB", (4, 4)), "x", 1)
    tracker.set("k", {"a": 1})
    tracker.close()


def test_aim_that_hangs_times_out(tmp_path, monkeypatch, caplog):
    import threading

    release = threading.Event()
    monkeypatch.setattr(aim_run.AimTracker, "_open",
                        staticmethod(lambda *a, **k: release.wait(30)))
    with caplog.at_level(logging.WARNING, logger="jepakit"):
        tracker = aim_run.AimTracker(tmp_path / "repo", "exp", "name", timeout=0.2)
    release.set()
    assert not tracker.active and "did not open" in caplog.text


def test_plain_makes_aim_storable_values():
    assert aim_run.plain({"a": (1, 2), 3: {"b": io}}) == {"a": [1, 2], "3": {"b": str(io)}}


def test_content_share_sees_the_positional_shortcut():
    from jepakit_monitors.collapse import content_share

    g = torch.Generator().manual_seed(0)
    position_only = torch.randn(1, 16, 32, generator=g).expand(8, 16, 32)
    assert content_share(position_only) == pytest.approx(0.0, abs=1e-6)
    assert content_share(torch.randn(64, 16, 32, generator=g)) == pytest.approx(1.0, abs=0.1)
    signs = collapse_signs({"rankme": 20.0, "target_std": 0.5, "pred_std": 0.5,
                            "content_share": 0.02}, 32)
    assert len(signs) == 1 and "position" in signs[0]
