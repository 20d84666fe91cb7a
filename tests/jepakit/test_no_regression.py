"""No regression from the method refactor: the engine's step for the I-JEPA and
data2vec-style recipes gives, step by step, the losses of the engine as it was
before steps became registered methods (commit 975f5b3).

That engine's step is re-stated below (``reference_losses``) and driven on a second
trainer built from the same recipe, so both start from the same weights, data and
masks; the losses must agree within 1e-6 on any CPU. (The losses the old engine itself
printed for these settings were also matched to 1e-7 by the new one before the synthetic
dataset changed; the re-statement is the lasting guard.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import jepakit
from jepakit.ops import gather_tokens
from jepakit.runtime import autocast

ROOT = Path(__file__).resolve().parents[2]
STEPS = 8
SMALL = [
    "encoder.params.embed_dim=64", "encoder.params.depth=3", "encoder.params.num_heads=4",
    "predictor.params.embed_dim=32", "predictor.params.depth=1", "predictor.params.num_heads=4",
    "train.batch_size=8", f"train.steps={STEPS}", "train.seed=3", "train.device=cpu",
    "train.num_workers=0", "optim.warmup_steps=2", "logging.every_steps=1",
    "logging.progress=false", "checkpoint.enabled=false", "data.params.num_samples=200",
    "monitors.aim=false", "monitors.every_steps=0", "monitors.loss_curve=false",
]
RECIPES = {
    "ijepa": "recipes/ijepa_tiny.yaml",
    "data2vec": "recipes/data2vec/data2vec_tiny.yaml",
}
def reference_losses(trainer) -> list[float]:
    """The pre-refactor ``JEPA.loss`` + ``Trainer.train_step``, on ``trainer``'s parts."""
    m = trainer.model
    (_, _, loss_fn), = m.loss_fn.terms  # the recipe's one loss component
    encoder, predictor, target, updater = m.encoder, m.predictor, m.target_encoder, m.target_updater
    losses = []
    for step in range(STEPS):
        batch = next(trainer.batches)
        images = batch.images
        masks = trainer.masks(images.shape[0], step)
        trainer.schedules.apply(trainer.optimizer, step)
        with autocast(trainer.device, None):
            with torch.no_grad():
                features = loss_fn.prepare_targets(target(images))
                targets = [gather_tokens(features, idx) for idx in masks.targets]
            predictions, expected = [], []
            for context in masks.context:
                tokens = encoder(images, keep=context)
                predictions += predictor(tokens, context, masks.targets)
                expected += targets
            loss = loss_fn(predictions, expected)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        with torch.no_grad():
            updater.update(encoder, target, step)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("method", sorted(RECIPES))
def test_engine_step_equals_the_pre_refactor_step(method):
    recipe = ROOT / RECIPES[method]
    engine = jepakit.build(recipe, SMALL, write_files=False)
    summary_losses = [h["loss"] for h in (engine.fit(), engine.history)[1]]
    reference = jepakit.build(recipe, SMALL, write_files=False)
    expected = reference_losses(reference)
    assert len(summary_losses) == STEPS
    assert summary_losses == pytest.approx(expected, abs=1e-6)
    assert expected[-1] != expected[0]  # the step really trains
