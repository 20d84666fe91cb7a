"""``train.compile`` on video: with ``masker.params.length_buckets`` the V-JEPA step builds
a few graphs for the whole run and trains to the eager losses."""

from __future__ import annotations

from pathlib import Path

import jepakit
import jepakit.compile
from jepakit.compile import compilations, static_shapes

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "recipes" / "vjepa" / "vjepa_tiny.yaml"
STEPS, BATCH = 40, 8
OVERRIDES = [
    "encoder.params.depth=1", "predictor.params.depth=1", f"train.batch_size={BATCH}",
    f"train.steps={STEPS}", "train.device=cpu", "train.precision=fp32",
    "logging.progress=false", "monitors.aim=false", "monitors.probe_samples=0",
    "checkpoint.enabled=false", "masker.params.length_buckets=2",
]


def _train(compile_step: bool) -> tuple[list[float], jepakit.Trainer]:
    trainer = jepakit.build(TINY, [*OVERRIDES, f"train.compile={compile_step}"],
                            write_files=False)
    losses = [float(trainer.train_step(next(trainer.batches).to(trainer.device)))
              for _ in range(STEPS)]
    return losses, trainer


def test_bucketed_video_step_compiles_a_few_graphs_and_matches_eager(monkeypatch):
    monkeypatch.setattr(jepakit.compile, "BACKEND", "aot_eager")  # dynamo's graphs, no codegen
    eager, _ = _train(False)
    compiled, trainer = _train(True)
    model, masker = trainer.model, trainer.masks.masker
    grid = tuple(model.encoder.patch_grid)
    assert static_shapes(masker, grid, BATCH)
    levels = masker.length_levels(grid, BATCH)
    assert 1 <= compilations(model.encoder) <= sum(len(c) for c in levels.context)
    assert 1 <= compilations(model.predictor) <= levels.count
    assert compilations(model.target_encoder) == 1  # whole clips: one shape
    assert max(abs(a - b) for a, b in zip(eager, compiled)) <= 1e-5, (eager, compiled)
