"""LeJEPA end to end on CPU: the registered method trains from its recipe, the loss goes
down, the composed terms are logged, and the embeddings do not collapse (RankMe)."""

from __future__ import annotations

from pathlib import Path

import pytest

import jepakit

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "recipes" / "lejepa" / "lejepa_tiny.yaml"
SMALL = [
    "encoder.params.embed_dim=64", "encoder.params.depth=2", "encoder.params.num_heads=4",
    "projector.params.hidden_dim=128", "projector.params.out_dim=32",
    "loss.params.num_directions=64", "train.batch_size=32", "train.steps=30",
    "train.device=cpu", "optim.warmup_steps=3", "logging.every_steps=5",
    "monitors.every_steps=5", "logging.progress=false", "monitors.aim=false",
    "monitors.loss_curve=false", "checkpoint.enabled=false", "data.params.num_samples=960",
]


@pytest.fixture(scope="module")
def history():
    trainer = jepakit.build(TINY, SMALL, write_files=False)
    trainer.fit()
    return trainer.history


def test_lejepa_trains_30_steps_and_the_loss_goes_down(history):
    losses = [h["loss"] for h in history]
    assert len(losses) == 6
    assert sum(losses[-2:]) < sum(losses[:2])


def test_lejepa_logs_each_loss_term(history):
    last = history[-1]
    sigreg, invariance = last["loss/lejepa/sigreg"], last["loss/lejepa/invariance"]
    assert last["loss"] == pytest.approx(sigreg + invariance, rel=1e-5)


def test_lejepa_embeddings_do_not_collapse(history):
    assert all(h["rankme"] > 4 for h in history if "rankme" in h)  # of 32 dimensions


def test_ijepa_with_sigreg_logs_both_terms():
    recipe = ROOT / "recipes" / "ablations" / "ijepa_sigreg_noema.yaml"
    trainer = jepakit.build(recipe, [
        "encoder.params.embed_dim=64", "encoder.params.depth=2", "predictor.params.depth=1",
        "train.batch_size=8", "train.steps=2", "logging.every_steps=1", "logging.progress=false",
        "monitors.aim=false", "monitors.loss_curve=false", "monitors.every_steps=0",
        "checkpoint.enabled=false", "data.params.num_samples=64", "loss.1.params.num_directions=8",
    ], write_files=False)
    trainer.fit()
    h = trainer.history[-1]
    assert h["loss"] == pytest.approx(h["loss/smooth_l1"] + 0.05 * h["loss/sigreg"], rel=1e-5)
    assert "momentum" not in h  # no teacher: nothing to report
    assert trainer.model.target_encoder is trainer.model.encoder


def test_lejepa_run_is_probed_on_the_backbone_or_the_projector_and_exports(tmp_path):
    import torch

    from jepakit import checkpoint
    from jepakit.errors import JepakitError
    from jepakit.eval import features as F
    from jepakit.interop.export import encoder_from_state

    run = tmp_path / "run"
    overrides = [o for o in SMALL if not o.startswith(("train.steps", "checkpoint"))]
    jepakit.build(TINY, [*overrides, "train.steps=2"], run_dir=run).fit()
    images = torch.randn(3, 3, 32, 32)
    backbone = F.from_run(run)
    projected = F.from_run(run, head="projector")
    assert F.encode(backbone.encoder, images).shape == (3, 64)  # the ViT's width
    assert F.encode(projected.encoder, images).shape == (3, 32)  # the projector's out_dim
    assert backbone.fingerprint != projected.fingerprint  # separate feature caches
    state = checkpoint.load(checkpoint.list_checkpoints(run / "checkpoints")[-1][1])
    assert "target_encoder" not in state and "projector" in state  # no teacher copy saved
    encoder, _ = encoder_from_state(state)  # export reads the backbone
    torch.testing.assert_close(encoder(images), backbone.encoder(images))
    ijepa = tmp_path / "ijepa"
    jepakit.build(ROOT / "recipes" / "ijepa_tiny.yaml", [
        "encoder.params.depth=1", "predictor.params.depth=1", "train.steps=1",
        "train.batch_size=4", "data.params.num_samples=8", "logging.progress=false",
        "monitors.aim=false", "monitors.loss_curve=false", "monitors.every_steps=0",
    ], run_dir=ijepa).fit()
    with pytest.raises(JepakitError, match="has no projector"):
        F.from_run(ijepa, head="projector")
