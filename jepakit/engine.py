"""The step-based training loop around a registered method (``jepakit.contracts.Method``).

The method computes a step's loss; the engine keeps what every method shares:
optimizer and schedules, precision, DDP over the whole method (only what it trains
gets gradients; a target copy is updated identically on every rank by the method),
non-finite and preemption handling, checkpoints and logging. Only rank 0 writes
files. State for an exact resume: every module of the method, its extra state,
optimizer, step, data position and RNG streams of every rank.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from jepakit import __version__, checkpoint, distributed
from jepakit.compile import compile_modules, static_shapes, warn_if_unbucketed
from jepakit.config import unstructure
from jepakit.contracts import StepResult
from jepakit.data.badsamples import DataHealth
from jepakit.data.loader import Batch, Epochs, MaskStream, build_loader
from jepakit.errors import ConfigError, JepakitError
from jepakit.faults import NonFiniteWatch, PreemptionFlag
from jepakit.flops import mask_sizes
from jepakit.maskcheck import CheckedMaskStream
from jepakit.method import build_method, input_shape, load_module_states, module_states
from jepakit.optim import Schedules, build_optimizer
from jepakit.recipe import Recipe, dump_recipe, load_recipe
from jepakit.registry import Registry, default_registry
from jepakit.runtime import (
    autocast,
    configure_device,
    cpu_has_native_bf16,
    seed_everything,
    select_device,
    select_dtype,
)
from jepakit.tracking import MetricsWriter, Progress, Throughput, log, setup_logging


class Trainer:
    """Holds what a run needs; :meth:`fit` runs it."""

    def __init__(self, recipe: Recipe, model: Any, masks: MaskStream | None, batches: Epochs,
                 registry: Registry, device: torch.device, run_dir: Path | None,
                 env: distributed.DistEnv | None = None) -> None:
        self.recipe, self.model, self.masks, self.batches = recipe, model, masks, batches
        self.registry, self.device, self.run_dir = registry, device, run_dir
        self.env = env or distributed.DistEnv()
        self.dtype = select_dtype(recipe.train.precision, device)
        self.optimizer = build_optimizer(model.trainable(), recipe.optim)
        self.schedules = Schedules(recipe.optim, recipe.train)
        self.total_steps = recipe.train.total_steps
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.nonfinite = NonFiniteWatch()
        self.skipped_steps = 0
        self.last_batch: Batch | None = None
        self.data_health = DataHealth.for_dataset(getattr(batches.loader, "dataset", None))
        self.last_result: StepResult | None = None
        self.step_module: Any = model
        if self.env.distributed:  # DDP syncs every module's start from rank 0
            ids = [device.index] if device.type == "cuda" else None
            self.step_module = DDP(model, device_ids=ids)

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.run_dir / "checkpoints" if self.run_dir else None

    def train_step(self, batch: Batch) -> torch.Tensor:
        """One optimisation step (advances ``self.step``); returns the loss without
        syncing to the host, except when ``train.skip_nonfinite_steps`` asks to check."""
        if batch.masks is None and self.masks is not None:
            batch.masks = self.masks(batch.images.shape[0], self.step).to(self.device)
        self.schedules.apply(self.optimizer, self.step)
        with autocast(self.device, self.dtype):
            result = self.step_module(batch, self.step)
        self.last_result, loss = result, result.loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # DDP averages gradients, so one rank's NaN reaches all: every rank decides alike.
        if self.recipe.train.skip_nonfinite_steps and _any_rank(not bool(torch.isfinite(loss))):
            self.skipped_steps += 1
            log.warning("step %d: loss is %s; step skipped (%d of %d allowed)", self.step + 1,
                        float(loss.detach()), self.skipped_steps,
                        self.recipe.train.skip_nonfinite_steps)
            if self.skipped_steps > self.recipe.train.skip_nonfinite_steps:
                self.nonfinite.observe(loss)
            self.step += 1
            return loss.detach()
        self.nonfinite.observe(loss)
        if self.recipe.optim.grad_clip:
            params = [p for m in self.model.trainable() for p in m.parameters()]
            torch.nn.utils.clip_grad_norm_(params, self.recipe.optim.grad_clip, foreach=True)
        self.optimizer.step()
        self.model.after_optimizer_step(self.step)
        self.step += 1
        return loss.detach()

    def fit(self) -> dict[str, Any]:
        """Train to ``total_steps`` (or until preempted); returns the run summary."""
        with PreemptionFlag() as preemption:  # first: SIGTERM during start-up saves too
            return self._fit(preemption)

    def _fit(self, preemption: PreemptionFlag) -> dict[str, Any]:
        cfg = self.recipe
        hook = self.registry.hook()
        main = self.env.is_main
        writer = MetricsWriter(self.run_dir / "metrics.jsonl" if self.run_dir and main else None)
        progress = Progress(self.total_steps, self.step, enabled=cfg.logging.progress and main)
        clock, images_since, preempted = Throughput(), 0, False
        hook.jepakit_on_train_start(trainer=self)
        try:
            while self.step < self.total_steps and not preempted:
                batch = next(self.batches).to(self.device)
                self.data_health.update(batch.data_stats)  # may stop the run
                loss = self.train_step(batch)
                images_since += batch.images.shape[0] * self.env.world_size
                logging_now = self.step % cfg.logging.every_steps == 0
                saving_now = bool(cfg.checkpoint.every_steps) and \
                    self.step % cfg.checkpoint.every_steps == 0
                if logging_now or saving_now or self.step == self.total_steps:
                    self._check_finite()
                    preempted = _any_rank(preemption.requested)
                if logging_now or self.step == self.total_steps or preempted:
                    metrics = self._metrics(loss, batch, clock.rate(images_since))
                    images_since = 0
                    self.last_batch = batch  # for monitors in jepakit_on_step_end
                    hook.jepakit_on_step_end(trainer=self, step=self.step, metrics=metrics)
                    writer.write(metrics)  # after the hook: plugins may add metrics
                    self.history.append(metrics)
                    progress.update_to(self.step, metrics)
                if saving_now or preempted or self.step == self.total_steps:
                    self.save_checkpoint()
        finally:
            progress.close()
            writer.close()
            self.data_health.report()
        if preempted:
            log.warning("preempted (SIGTERM) at step %d: checkpoint saved", self.step)
        summary = {**self.summary(clock.elapsed), "preempted": preempted}
        hook.jepakit_on_train_end(trainer=self, summary=summary)
        return summary

    def _metrics(self, loss: torch.Tensor, batch: Batch, images_per_s: float) -> dict[str, Any]:
        terms = self.last_result.terms if self.last_result is not None else {}
        return {
            "step": self.step,
            "loss": float(distributed.mean_across_ranks(loss)),
            **{f"loss/{name}": float(distributed.mean_across_ranks(value))
               for name, value in terms.items() if len(terms) > 1 or "/" in name},
            "lr": self.schedules.lr(self.step - 1),
            "weight_decay": self.schedules.weight_decay(self.step - 1),
            **self.model.log_values(self.step - 1),
            **(mask_sizes(batch.masks) if batch.masks is not None else {}),
            "images_per_s": images_per_s,
            **self.data_health.metrics(),
        }

    def _check_finite(self) -> None:
        if _any_rank(self.nonfinite.count() > 0):
            last = checkpoint.list_checkpoints(self.checkpoint_dir) if self.checkpoint_dir else []
            kept = f"; the last good checkpoint is {last[-1][1]}" if last else ""
            raise JepakitError(
                f"the loss became NaN or infinite by step {self.step}: training diverged "
                f"(lower optim.lr, set optim.grad_clip, or train.skip_nonfinite_steps){kept}"
            )

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs. Collective: every rank must call it."""
        per_rank = {"rng": checkpoint.rng_state(), "data": self.batches.state_dict()}
        ranks = _gather(per_rank, self.env)
        return {
            "step": self.step,
            **module_states(self.model),
            "method_state": self.model.extra_state(),
            "optimizer": self.optimizer.state_dict(),
            "ranks": ranks,
            "data_health": self.data_health.state_dict(),
            "skipped_steps": self.skipped_steps,
            "recipe": unstructure(self.recipe),
            "jepakit_version": __version__,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ranks = state["ranks"]
        if len(ranks) != self.env.world_size:
            raise JepakitError(f"the checkpoint was written by {len(ranks)} processes; this run "
                               f"has {self.env.world_size}: resume with the same world size")
        load_module_states(self.model, state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_health.load_state_dict(state.get("data_health", {}))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.batches.load_state_dict(ranks[self.env.rank]["data"])
        checkpoint.set_rng_state(ranks[self.env.rank]["rng"])
        self.step = int(state["step"])

    def save_checkpoint(self) -> Path | None:
        if self.checkpoint_dir is None or not self.recipe.checkpoint.enabled:
            return None
        state = self.state_dict()
        path = checkpoint.checkpoint_path(self.checkpoint_dir, self.step)
        if self.env.is_main:
            checkpoint.save_atomic(state, path)
            checkpoint.prune(self.checkpoint_dir, self.recipe.checkpoint.keep_last)
            log.info("saved checkpoint %s", path)
        distributed.barrier()
        return path

    def resume(self, source: str) -> Path | None:
        """``auto``: the newest loadable checkpoint of the run directory (none: start
        fresh); otherwise a checkpoint file."""
        if source == "auto":
            found = checkpoint.latest_valid(self.checkpoint_dir, log) if self.checkpoint_dir else None
            if found is None:
                log.info("resume auto: no checkpoint yet, starting from step 0")
                return None
            path, state = found
        else:
            path = Path(source)
            state = checkpoint.load(path)
        self.load_state_dict(state)
        if self.run_dir and self.env.is_main:
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        log.warning("resumed from %s at step %d", path, self.step)
        return path

    def summary(self, elapsed: float) -> dict[str, Any]:
        first = self.history[0]["loss"] if self.history else float("nan")
        last = self.history[-1]["loss"] if self.history else float("nan")
        video = getattr(getattr(self.model, "encoder", None), "num_frames", None) is not None
        return {
            "steps": self.step,
            "elapsed_s": elapsed,
            "images_per_s": len(self.history) and sum(h["images_per_s"] for h in self.history)
            / len(self.history),
            "sample_unit": "clips" if video else "images",  # what the rate above counts
            "first_loss": first,
            "final_loss": last,
            "skipped_steps": self.skipped_steps,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            **self.data_health.summary(),
        }


def _any_rank(flag: bool) -> bool:
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    t = torch.tensor([int(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _gather(obj: Any, env: distributed.DistEnv) -> list[Any]:
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records a killed run logged after the checkpoint it resumes from."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


def default_run_dir(recipe: Recipe, root: str | Path = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{recipe.name}-{stamp}"


def build(
    recipe: str | Path | dict | Recipe,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    registry: Registry | None = None,
    write_files: bool = True,
    resume: str | None = None,
) -> Trainer:
    """Recipe (path, dict or Recipe) + overrides -> a ready :class:`Trainer`.

    Joins the process group when started by torchrun or srun. With ``write_files``
    rank 0 writes the resolved recipe, ``run.log``, ``metrics.jsonl`` and checkpoints.
    ``resume``: ``"auto"`` or a checkpoint path.
    """
    registry = registry or default_registry()
    recipe = load_recipe(recipe, overrides, registry)
    env = distributed.detect()
    device = distributed.device_for(env, select_device(recipe.train.device))
    configure_device(device)
    distributed.init(env, device)
    per_rank = distributed.per_rank_batch(recipe.train.batch_size, env)
    seed_everything(recipe.train.seed)  # identical initial weights on every rank
    model, masker = build_method(recipe, registry, device)
    seed_everything(recipe.train.seed + env.rank)
    grid = tuple(getattr(model, "encoder").patch_grid)  # noqa: B009 (contract attribute)
    masks = None if masker is None else CheckedMaskStream(
        masker, grid, seed=recipe.train.seed, rank=env.rank, name=recipe.spec("masker").name)
    if masks is not None:  # a broken masker stops here, before data, files or training
        masks.check_start(per_rank)
    in_chans, height, _ = input_shape(model)
    frames = getattr(getattr(model, "encoder"), "num_frames", None)  # noqa: B009 (video: clip length)
    data = recipe.spec("dataset")
    dataset = registry.create(
        "dataset", data.name, data.params, path="data.params",
        image_size=height, in_chans=in_chans, seed=recipe.train.seed,
        **({"views": recipe.views} if recipe.views is not None else {}),
        **({"num_frames": frames} if frames is not None else {}),
    )
    if hasattr(dataset, "__len__") and len(dataset) < recipe.train.batch_size:
        raise ConfigError(
            f"data: the dataset holds {len(dataset)} samples, fewer than one batch "
            f"(train.batch_size={recipe.train.batch_size})"
        )
    loader = build_loader(dataset, per_rank, recipe.train.num_workers, seed=recipe.train.seed,
                          rank=env.rank, world_size=env.world_size,
                          pin_memory=device.type == "cuda")
    out: Path | None = None
    if write_files:
        out = Path(run_dir) if run_dir else default_run_dir(recipe)
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "recipe.yaml").write_text(dump_recipe(recipe))
    setup_logging(out if env.is_main else None)
    log.info("jepakit %s, torch %s, device %s, rank %d of %d, started %s", __version__,
             torch.__version__, device, env.rank, env.world_size, time.strftime("%F %T"))
    if device.type == "cpu" and select_dtype(recipe.train.precision, device) is not None \
            and not cpu_has_native_bf16():
        log.warning("train.precision=bf16 on a CPU without native bf16: matmuls are emulated "
                    "and far slower than fp32")
    if recipe.train.compile:  # one graph per mask-length bucket and module
        if masker is not None:
            warn_if_unbucketed(masker, grid, per_rank)
            configure_device(device, static_shapes=static_shapes(masker, grid, per_rank))
        compile_modules(*dict(model.named_children()).values())
    trainer = Trainer(recipe, model, masks, Epochs(loader), registry, device, out, env)
    if resume:
        trainer.resume(resume)
    return trainer
