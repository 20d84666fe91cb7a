"""End to end: build a trainer from the tiny recipe, train on CPU, inspect what the run leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import jepakit
from jepakit import checkpoint
from jepakit.contracts import Masks
from jepakit.data.loader import MaskStream, collate
from jepakit.method import build_method
from jepakit.recipe import load_recipe
from jepakit.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "ijepa_tiny.yaml"
STEPS, EVERY = 30, 5
OVERRIDES = [
    "encoder.params.embed_dim=64", "encoder.params.depth=2", "encoder.params.num_heads=4",
    "predictor.params.embed_dim=32", "predictor.params.depth=1", "predictor.params.num_heads=4",
    "train.batch_size=16", f"train.steps={STEPS}", "train.seed=0", "train.device=cpu",
    "train.num_workers=0", "optim.warmup_steps=5",
    f"logging.every_steps={EVERY}", "logging.progress=false", "monitors.probe_samples=0",
    "checkpoint.every_steps=0", "checkpoint.keep_last=2", "data.params.num_samples=2000",
]
METRIC_KEYS = {"step", "loss", "lr", "momentum", "context_tokens", "target_tokens", "images_per_s"}


class Recorder:
    """A lifecycle plugin: the engine calls it through pluggy, never by name."""

    def __init__(self) -> None:
        self.started: list[object] = []
        self.steps: list[tuple[int, dict]] = []
        self.ended: list[dict] = []

    @jepakit.hookimpl
    def jepakit_on_train_start(self, trainer):
        self.started.append(trainer)

    @jepakit.hookimpl
    def jepakit_on_step_end(self, trainer, step, metrics):
        self.steps.append((step, dict(metrics)))

    @jepakit.hookimpl
    def jepakit_on_train_end(self, trainer, summary):
        self.ended.append(summary)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short CPU run shared by the tests below (the expensive part)."""
    recorder = Recorder()
    registry = Registry(plugins=[recorder])
    run_dir = tmp_path_factory.mktemp("engine") / "run"
    trainer = jepakit.build(TINY, OVERRIDES, run_dir=run_dir, registry=registry)
    initial_target = {k: v.clone() for k, v in trainer.model.target_encoder.state_dict().items()}
    summary = trainer.fit()
    return {"trainer": trainer, "summary": summary, "run_dir": run_dir, "recorder": recorder,
            "initial_target": initial_target}


def _metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_loss_decreases(trained):
    records = _metrics(trained["run_dir"])
    losses = [r["loss"] for r in records]
    assert all(isinstance(x, float) and x > 0 for x in losses)
    assert sum(losses[-2:]) / 2 < losses[0], losses


def test_metrics_jsonl(trained):
    records = _metrics(trained["run_dir"])
    assert [r["step"] for r in records] == list(range(EVERY, STEPS + 1, EVERY))
    trainer = trained["trainer"]
    grid = trainer.model.encoder.patch_grid
    for r in records:
        assert METRIC_KEYS <= set(r), set(r)
        assert r["lr"] == pytest.approx(trainer.schedules.lr(r["step"] - 1))
        assert r["momentum"] == pytest.approx(trainer.model.target_updater.momentum(r["step"] - 1))
        assert 0 < r["context_tokens"] < grid[0] * grid[1]
        assert 0 < r["target_tokens"] <= 4 * grid[0] * grid[1]
        assert r["images_per_s"] > 0
    momenta = [r["momentum"] for r in records]
    start = trainer.recipe.target_updater.params["start"]
    assert momenta == sorted(momenta) and start <= momenta[0] < momenta[-1] <= 1.0


def test_summary(trained):
    summary = trained["summary"]
    records = _metrics(trained["run_dir"])
    assert summary["steps"] == STEPS
    assert summary["first_loss"] == pytest.approx(records[0]["loss"])
    assert summary["final_loss"] == pytest.approx(records[-1]["loss"])
    assert summary["run_dir"] == str(trained["run_dir"])


def test_lifecycle_hooks_called(trained):
    recorder, trainer = trained["recorder"], trained["trainer"]
    assert recorder.started == [trainer]
    assert [step for step, _ in recorder.steps] == list(range(EVERY, STEPS + 1, EVERY))
    records = _metrics(trained["run_dir"])
    for (_, metrics), record in zip(recorder.steps, records, strict=True):
        assert metrics["loss"] == pytest.approx(record["loss"])
    assert len(recorder.ended) == 1 and recorder.ended[0]["steps"] == STEPS


def test_recipe_written_and_reloads(trained):
    path = trained["run_dir"] / "recipe.yaml"
    assert path.is_file()
    reloaded = load_recipe(path, registry=Registry())
    assert reloaded == trained["trainer"].recipe
    assert reloaded.train.steps == STEPS
    assert reloaded.encoder.params["embed_dim"] == 64


def test_checkpoint_written_and_loads(trained):
    files = sorted((trained["run_dir"] / "checkpoints").glob("*.pt"))
    assert [f.name for f in files] == [f"step_{STEPS:08d}.pt"]
    state = torch.load(files[0], map_location="cpu", weights_only=True)
    assert state["step"] == STEPS
    assert {"encoder", "predictor", "target_encoder", "optimizer", "recipe"} <= set(state)
    trainer = trained["trainer"]
    for name, tensor in trainer.model.encoder.state_dict().items():
        assert torch.equal(state["encoder"][name], tensor)
    assert checkpoint.load(files[0])["step"] == STEPS


def test_training_moved_weights_and_target(trained):
    trainer = trained["trainer"]
    target = trainer.model.target_encoder
    assert all(not p.requires_grad for p in target.parameters())
    moved = [not torch.equal(trained["initial_target"][k], v)
             for k, v in target.state_dict().items()]
    assert any(moved)  # the EMA updated the target
    online = trainer.model.encoder.state_dict()
    assert any(not torch.equal(online[k], v) for k, v in target.state_dict().items())


def test_build_is_deterministic(tmp_path):
    """Same recipe and seed: the same first batch, masks and initial loss."""
    overrides = [*OVERRIDES, "train.steps=2"]
    losses, masks = [], []
    for _ in range(2):
        trainer = jepakit.build(TINY, overrides, registry=Registry(), write_files=False)
        batch = next(trainer.batches)
        batch.masks = trainer.masks(batch.images.shape[0], step=0)
        masks.append(batch.masks)
        with torch.no_grad():
            losses.append(float(trainer.model(batch, 0).loss))
    assert losses[0] == losses[1]
    for a, b in zip(masks[0].context + masks[0].targets, masks[1].context + masks[1].targets,
                    strict=True):
        assert torch.equal(a, b)


def test_build_reports_config_errors_before_building():
    with pytest.raises(jepakit.ConfigError, match="train.stpes"):
        jepakit.build(TINY, ["train.stpes=3"], registry=Registry(), write_files=False)


def test_jepa_loss_follows_the_contracts():
    """The generic step on CPU: targets gathered from the full-image
    target features, predictions per target, a scalar loss with gradients."""
    recipe = load_recipe(TINY, OVERRIDES, registry=Registry())
    model, masker = build_method(recipe, Registry(), device="cpu")
    images = torch.randn(4, 3, *model.encoder.image_size)
    batch = collate([(img, 0) for img in images])
    batch.masks = MaskStream(masker, model.encoder.patch_grid, seed=0)(4, step=0)
    assert isinstance(batch.masks, Masks) and batch.images.shape == images.shape
    _, targets = model.targets(images, batch.masks)
    assert len(targets) == len(batch.masks.targets)
    full = model.loss_fn.prepare_targets(model.target_encoder(images))
    for t, idx in zip(targets, batch.masks.targets, strict=True):
        assert t.shape == (4, idx.shape[1], model.encoder.embed_dim)
        torch.testing.assert_close(t, full[torch.arange(4)[:, None], idx])
    loss = model(batch, 0).loss
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.encoder.patch_embed.proj.weight.grad is not None
    assert all(p.grad is None for p in model.target_encoder.parameters())


def test_mask_stream_is_keyed_on_seed_rank_and_step():
    """Masks depend only on (seed, rank, step), so a resumed run draws the same ones,
    and the stream pickles (the masker runs wherever the trainer does)."""
    import pickle

    recipe = load_recipe(TINY, OVERRIDES, registry=Registry())
    masker = Registry().create("masker", recipe.masker.name, recipe.masker.params)
    stream = MaskStream(masker, (8, 8), seed=3)
    first = stream(4, step=7)
    again = pickle.loads(pickle.dumps(stream))(4, step=7)
    for a, b in zip(first.context + first.targets, again.context + again.targets, strict=True):
        assert torch.equal(a, b)

    def differs(other):
        return not all(torch.equal(a, b) for a, b in zip(first.targets, other.targets))

    assert differs(stream(4, step=8))
    assert differs(MaskStream(masker, (8, 8), seed=4)(4, step=7))
    assert differs(MaskStream(masker, (8, 8), seed=3, rank=1)(4, step=7))
    batch = collate([(torch.zeros(3, 32, 32), i) for i in range(4)])
    assert batch.labels.tolist() == [0, 1, 2, 3] and batch.masks is None
