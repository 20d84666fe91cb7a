"""``train.compile``: the tiny recipe's step compiled, with length buckets, builds at most
one graph per bucket and trains to the same losses as eager."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import jepakit
import jepakit.compile
from jepakit.compile import compilations, compile_modules

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "ijepa_tiny.yaml"
STEPS = 50
OVERRIDES = [
    "encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
    "predictor.params.embed_dim=16", "predictor.params.depth=1", "predictor.params.num_heads=2",
    "train.batch_size=8", f"train.steps={STEPS}",
    "train.device=cpu", "train.precision=fp32", "data.params.num_samples=400",
    "logging.progress=false", "monitors.aim=false", "monitors.every_steps=0",
    "monitors.mask_images_every_steps=0", "checkpoint.enabled=false",
]


def _train(compile_step: bool, buckets: int = 2) -> tuple[list[float], jepakit.Trainer]:
    trainer = jepakit.build(TINY, [*OVERRIDES, f"train.compile={compile_step}",
                                   f"masker.params.length_buckets={buckets}"], write_files=False)
    losses = []
    for _ in range(STEPS):
        losses.append(float(trainer.train_step(next(trainer.batches).to(trainer.device))))
    return losses, trainer


def test_compiled_step_one_graph_per_bucket_and_eager_losses(monkeypatch):
    """Graph capture, guards and recompiles are dynamo's whatever the backend: aot_eager
    (forward and backward traced, no code generation) keeps this test fast."""
    monkeypatch.setattr(jepakit.compile, "BACKEND", "aot_eager")
    eager, _ = _train(False)
    compiled, trainer = _train(True)
    model = trainer.model
    levels = trainer.masks.masker.length_levels(model.encoder.patch_grid, 8)
    drawn = {(int(trainer.masks(8, s).context[0].shape[1]),
              int(trainer.masks(8, s).targets[0].shape[1])) for s in range(STEPS)}
    assert len(drawn) > 1  # the run met several buckets
    assert 1 <= compilations(model.encoder) <= len(levels.context)
    assert 1 <= compilations(model.predictor) <= levels.count
    assert compilations(model.target_encoder) == 1  # full images: one shape
    assert max(abs(a - b) for a, b in zip(eager, compiled)) <= 1e-5, (eager, compiled)


def test_compilations_count_each_new_shape():
    layer = torch.nn.Linear(4, 4)
    compile_modules(layer, backend="eager")
    assert compilations(layer) == 0
    for rows in (2, 3, 2, 3, 5):
        layer(torch.randn(rows, 4))
    assert compilations(layer) == 3  # static shapes: one graph per distinct input shape
    assert compilations(torch.nn.Linear(4, 4)) == 0


@pytest.mark.slow
def test_inductor_step_matches_eager():
    """The real backend (generated C++ kernels, fused): one bucket, so three graphs
    (about 30 s of compiling on two cores)."""
    eager, _ = _train(False, buckets=1)
    compiled, trainer = _train(True, buckets=1)
    model = trainer.model
    assert [compilations(m) for m in (model.encoder, model.predictor, model.target_encoder)] \
        == [1, 1, 1]
    assert max(abs(a - b) for a, b in zip(eager, compiled)) <= 1e-5, (eager, compiled)
