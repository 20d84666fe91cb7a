"""The step-based training loop around :class:`jepakit.model.JEPA`."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from jepakit import __version__, checkpoint
from jepakit.config import unstructure
from jepakit.data.badsamples import DataHealth
from jepakit.data.loader import Batch, MaskCollator, build_loader, infinite
from jepakit.errors import ConfigError, JepakitError
from jepakit.flops import mask_sizes
from jepakit.model import JEPA, build_jepa
from jepakit.optim import Schedules, build_optimizer
from jepakit.recipe import Recipe, dump_recipe, load_recipe
from jepakit.registry import Registry, default_registry
from jepakit.runtime import autocast, seed_everything, select_device, select_dtype
from jepakit.tracking import MetricsWriter, Progress, Throughput, log, setup_logging


class Trainer:
    """Holds what a run needs; :meth:`fit` runs it. One process for now."""

    def __init__(self, recipe: Recipe, model: JEPA, masker: Any, loader: Any,
                 registry: Registry, device: torch.device, run_dir: Path | None) -> None:
        self.recipe = recipe
        self.model = model
        self.masker = masker
        self.loader = loader
        self.registry = registry
        self.device = device
        self.run_dir = run_dir
        self.dtype = select_dtype(recipe.train.precision, device)
        self.optimizer = build_optimizer(model.trainable(), recipe.optim)
        self.schedules = Schedules(recipe.optim, recipe.train)
        self.total_steps = recipe.train.total_steps
        self.step = 0
        self.history: list[dict[str, float]] = []
        # Bad-sample accounting: counts travel on each batch (jepakit.data.badsamples).
        self.data_health = DataHealth.for_dataset(getattr(loader, "dataset", None))

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One optimisation step (advances ``self.step``); returns the loss without
        syncing to the host."""
        self.schedules.apply(self.optimizer, self.step)
        with autocast(self.device, self.dtype):
            loss = self.model.loss(batch.images, batch.masks)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.optim.grad_clip:
            params = [p for m in self.model.trainable() for p in m.parameters()]
            torch.nn.utils.clip_grad_norm_(params, self.recipe.optim.grad_clip, foreach=True)
        self.optimizer.step()
        self.model.update_target(self.step)
        self.step += 1
        return loss.detach()

    def fit(self) -> dict[str, Any]:
        cfg = self.recipe
        hook = self.registry.hook()
        writer = MetricsWriter(self.run_dir / "metrics.jsonl" if self.run_dir else None)
        progress = Progress(self.total_steps, self.step, enabled=cfg.logging.progress)
        clock, images_since = Throughput(), 0
        hook.jepakit_on_train_start(trainer=self)
        batches = infinite(self.loader)
        try:
            while self.step < self.total_steps:
                batch = next(batches).to(self.device)
                self.data_health.update(batch.data_stats)  # logs bad samples; may stop the run
                loss = self.train_step(batch)
                images_since += batch.images.shape[0]
                if self.step % cfg.logging.every_steps == 0 or self.step == self.total_steps:
                    metrics = self._metrics(loss, batch, clock.rate(images_since))
                    images_since = 0
                    self._check_finite(metrics)
                    writer.write(metrics)
                    self.history.append(metrics)
                    progress.update_to(self.step, metrics)
                    hook.jepakit_on_step_end(trainer=self, step=self.step, metrics=metrics)
                if cfg.checkpoint.every_steps and self.step % cfg.checkpoint.every_steps == 0:
                    self.save_checkpoint()
        finally:
            progress.close()
            writer.close()
            self.data_health.report()
        if cfg.checkpoint.enabled and not (cfg.checkpoint.every_steps
                                           and self.step % cfg.checkpoint.every_steps == 0):
            self.save_checkpoint()  # the loop has not just saved this step
        summary = self.summary(clock.elapsed)
        hook.jepakit_on_train_end(trainer=self, summary=summary)
        return summary

    def _metrics(self, loss: torch.Tensor, batch: Batch, images_per_s: float) -> dict[str, float]:
        return {
            "step": self.step,
            "loss": float(loss),
            "lr": self.schedules.lr(self.step - 1),
            "weight_decay": self.schedules.weight_decay(self.step - 1),
            "momentum": self.model.target_updater.momentum(self.step - 1),
            **mask_sizes(batch.masks),
            "images_per_s": images_per_s,
            **self.data_health.metrics(),
        }

    def _check_finite(self, metrics: dict[str, float]) -> None:
        if not math.isfinite(metrics["loss"]):
            raise JepakitError(
                f"loss is {metrics['loss']} at step {self.step}: training diverged "
                "(lower optim.lr, or try train.precision=fp32)"
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "encoder": self.model.encoder.state_dict(),
            "predictor": self.model.predictor.state_dict(),
            "target_encoder": self.model.target_encoder.state_dict(),
            "target_updater": self.model.target_updater.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "recipe": unstructure(self.recipe),
            "jepakit_version": __version__,
        }

    def save_checkpoint(self) -> Path | None:
        if self.run_dir is None or not self.recipe.checkpoint.enabled:
            return None
        directory = self.run_dir / "checkpoints"
        path = checkpoint.checkpoint_path(directory, self.step)
        checkpoint.save_atomic(self.state_dict(), path)
        checkpoint.prune(directory, self.recipe.checkpoint.keep_last)
        log.info("saved checkpoint %s", path)
        return path

    def summary(self, elapsed: float) -> dict[str, Any]:
        first = self.history[0]["loss"] if self.history else float("nan")
        last = self.history[-1]["loss"] if self.history else float("nan")
        return {
            "steps": self.step,
            "elapsed_s": elapsed,
            "images_per_s": self.step * self.recipe.train.batch_size / max(elapsed, 1e-9),
            "first_loss": first,
            "final_loss": last,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            **self.data_health.summary(),
        }


def default_run_dir(recipe: Recipe, root: str | Path = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{recipe.name}-{stamp}"


def build(
    recipe: str | Path | dict | Recipe,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    registry: Registry | None = None,
    write_files: bool = True,
) -> Trainer:
    """Recipe (path, dict or Recipe) + overrides -> a ready :class:`Trainer`.

    With ``write_files`` the run directory gets the resolved recipe, ``run.log``,
    ``metrics.jsonl`` and checkpoints.
    """
    registry = registry or default_registry()
    recipe = load_recipe(recipe, overrides, registry)
    device = select_device(recipe.train.device)
    seed_everything(recipe.train.seed)
    model, masker = build_jepa(recipe, registry, device)
    dataset = registry.create(
        "dataset", recipe.data.name, recipe.data.params, path="data.params",
        image_size=model.image_size[0], in_chans=model.in_chans, seed=recipe.train.seed,
    )
    if hasattr(dataset, "__len__") and len(dataset) < recipe.train.batch_size:
        raise ConfigError(
            f"data: the dataset holds {len(dataset)} samples, fewer than one batch "
            f"(train.batch_size={recipe.train.batch_size})"
        )
    collate = MaskCollator(masker, model.patch_grid, seed=recipe.train.seed)
    loader = build_loader(dataset, collate, recipe.train.batch_size, recipe.train.num_workers,
                          seed=recipe.train.seed, pin_memory=device.type == "cuda")
    out: Path | None = None
    if write_files:
        out = Path(run_dir) if run_dir else default_run_dir(recipe)
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(dump_recipe(recipe))
    setup_logging(out)
    log.info("jepakit %s, torch %s, device %s, started %s", __version__, torch.__version__,
             device, time.strftime("%Y-%m-%d %H:%M:%S"))
    return Trainer(recipe, model, masker, loader, registry, device, out)
