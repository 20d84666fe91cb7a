"""Watching a run: collapse monitors, an in-training k-NN monitor, an aim run and loss.png.

A shipped plugin that uses only the lifecycle hooks, so the engine knows nothing
of it (and a third party could replace it). Configured by its own recipe section,
``monitors:`` (:class:`MonitorsConfig`, docs/monitoring.md):

* ``monitor_every_steps``: RankMe, feature spread and prediction-target cosine on a
  few images of the step's batch, added to the step's metrics; a warning in the
  console and run.log when they signal collapse (:mod:`.collapse`).
* ``knn_every_steps`` + ``knn_data``: k-NN top-1 of the target encoder (:mod:`.knn_monitor`).
* ``aim``: recipe, metrics, system info and a picture of sampled masks every
  ``mask_images_every_steps`` steps in an aim run (:mod:`.aim_run`).
* ``loss_curve``: ``loss.png`` in the run directory at the end (:mod:`.curves`).
* ``probe_samples``: a linear probe of the trained and of the randomly initialised
  encoder on held-out labelled images after the last step (:mod:`.probe`).

Only rank 0 does any of this; the monitors' own cost is one no-grad forward pass of
a few images every ``monitor_every_steps`` steps.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

import attrs

import jepakit
from jepakit.tracking import log

from .collapse import collapse_metrics, collapse_signs

IMAGES_IN_MASK_PICTURE = 4


@attrs.define
class MonitorsConfig:
    """The ``monitors:`` recipe section (this plugin's own; docs/monitoring.md)."""

    aim: bool = True
    """Also write an aim run: recipe, metrics, system info, mask pictures (`jepakit ui`)."""
    aim_repo: str | None = None
    """Folder of the aim repository (default: the run directory's parent, e.g. runs/)."""
    every_steps: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    """Collapse monitors (RankMe, feature spread, prediction-target cosine); 0: off."""
    mask_images_every_steps: int = attrs.field(default=500, validator=attrs.validators.ge(0))
    """A picture of sampled masks in the aim run; 0: off."""
    knn_every_steps: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    """In-training k-NN accuracy of the evaluation encoder on ``knn_data``; 0: off."""
    knn_data: str | None = None
    """Labelled data for the k-NN monitor (as `jepakit eval --data`)."""
    knn_train_samples: int = attrs.field(default=2000, validator=attrs.validators.gt(0))
    knn_test_samples: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    loss_curve: bool = True
    """Write loss.png (loss and monitors against step) at the end of the run."""
    probe_samples: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    """Held-out labelled images for a linear probe of the evaluation encoder (and of its
    random initialisation) at the end of the run; 0: off."""


@jepakit.hookimpl
def jepakit_recipe_sections() -> list[jepakit.Section]:
    return [jepakit.Section("monitors", MonitorsConfig)]


def settings(trainer: Any) -> MonitorsConfig:
    config: MonitorsConfig = trainer.recipe.section("monitors")
    return config


def due(step: int, every: int, log_every: int) -> bool:
    """Whether a multiple of ``every`` lies in (previous logged step, ``step``]: the
    step-end hook only runs at logged steps, and the answer must not depend on where a
    resumed run started."""
    if every <= 0:
        return False
    previous = (step - 1) // log_every * log_every
    return step // every > previous // every


@attrs.define
class Watch:
    """What the plugin keeps for one trainer."""

    aim: Any = None
    knn: Any = None
    collapsed: bool = False
    failed: set[str] = attrs.field(factory=set)


_watches: weakref.WeakKeyDictionary[Any, Watch] = weakref.WeakKeyDictionary()


def _aim_repo(trainer: Any) -> Path:
    cfg = settings(trainer)
    return Path(cfg.aim_repo) if cfg.aim_repo else Path(trainer.run_dir).parent


def _resume_hash(run_dir: Path) -> str | None:
    import json

    from .aim_run import RUN_FILE

    try:
        return str(json.loads((run_dir / RUN_FILE).read_text())["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _norm_stats(trainer: Any) -> tuple[Any, Any]:
    params = dict(trainer.recipe.spec("dataset").params)
    mean, std = params.get("mean"), params.get("std")
    if mean is None or std is None:
        return None, None
    return tuple(mean), tuple(std)


@jepakit.hookimpl
def jepakit_on_train_start(trainer: Any) -> None:
    if not trainer.env.is_main:
        return
    cfg = settings(trainer)
    watch = _watches[trainer] = Watch()
    if cfg.knn_every_steps:
        from jepakit.errors import ConfigError

        from .knn_monitor import KnnMonitor

        if not cfg.knn_data:
            raise ConfigError("monitors.knn_every_steps needs monitors.knn_data: labelled images "
                              "(shards with cls, a folder of class folders, or Fashion-MNIST)")
        encoder = trainer.model.encoder
        mean, std = _norm_stats(trainer)
        watch.knn = KnnMonitor(cfg.knn_data, int(encoder.image_size[0]), int(encoder.in_chans),
                               mean, std, cfg.knn_train_samples, cfg.knn_test_samples)
    if cfg.aim and trainer.run_dir is not None:
        from jepakit.config import unstructure

        from .aim_run import AimTracker, system_info

        run_dir = Path(trainer.run_dir)
        resume = _resume_hash(run_dir) if trainer.step > 0 else None
        watch.aim = AimTracker(_aim_repo(trainer), trainer.recipe.name, run_dir.name, run_dir,
                               resume_hash=resume)
        watch.aim.set("hparams", unstructure(trainer.recipe))
        try:
            watch.aim.set("system", system_info(trainer))
        except Exception as exc:  # informational only
            log.warning("could not collect system info for aim: %s", exc)
        watch.aim.set("run_dir", str(run_dir.resolve()))


def _monitors(trainer: Any, step: int, metrics: dict[str, Any], watch: Watch) -> None:
    result = trainer.last_result
    if result is None:
        return
    try:
        found = collapse_metrics(result.outputs)
    except Exception as exc:  # outputs outside the contracts' common shape
        if "collapse" not in watch.failed:
            watch.failed.add("collapse")
            log.warning("collapse monitors failed at step %d (%s: %s); they are off for this run",
                        step, type(exc).__name__, exc)
        return
    metrics.update(found)
    width = _width(trainer, result.outputs)
    signs = collapse_signs(found, width) if width else []
    if signs and not watch.collapsed:
        log.warning("step %d: the representations may be collapsing: %s. Check the learning "
                    "rate, the EMA momentum and the masks (docs/monitoring.md)", step,
                    "; ".join(signs))
    elif not signs and watch.collapsed:
        log.warning("step %d: the collapse monitors are back to normal", step)
    watch.collapsed = bool(signs)


def _width(trainer: Any, outputs: Any) -> int:
    """The width RankMe is read at: the target features', else the embeddings'."""
    if outputs.target_features is not None:
        return int(outputs.target_features.shape[-1])
    if outputs.embeddings:
        return int(outputs.embeddings[0].shape[-1])
    return 0


@jepakit.hookimpl(trylast=True)
def jepakit_on_step_end(trainer: Any, step: int, metrics: dict[str, Any]) -> None:
    """Runs after other plugins' step-end hooks, so aim gets their metrics too."""
    watch = _watches.get(trainer)
    if watch is None:
        return
    cfg, log_every = settings(trainer), trainer.recipe.logging.every_steps
    if due(step, cfg.every_steps, log_every):
        _monitors(trainer, step, metrics, watch)
    if watch.knn is not None and due(step, cfg.knn_every_steps, log_every):
        start = time.perf_counter()
        metrics["knn_top1"] = watch.knn(trainer.model.eval_encoder(), trainer.device,
                                        trainer.dtype)
        log.info("step %d: k-NN top-1 %.4f (%.1f s)", step, metrics["knn_top1"],
                 time.perf_counter() - start)
    if watch.aim is not None:
        watch.aim.track(metrics, step, {"subset": "train"})
        batch = trainer.last_batch
        if batch is not None and batch.masks is not None and \
                (step == log_every or due(step, cfg.mask_images_every_steps, log_every)):
            _mask_picture(trainer, step, batch, watch)


def _mask_picture(trainer: Any, step: int, batch: Any, watch: Watch) -> None:
    from jepakit.drawing import draw_samples

    from .collapse import subset

    try:
        n = min(IMAGES_IN_MASK_PICTURE, batch.images.shape[0])
        images = [img.detach().float().cpu() for img in batch.images[:n]]
        masks = subset(batch.masks, n).to("cpu")
        masker = getattr(trainer.masks, "masker", None)
        picture = draw_samples(images, masks, trainer.model.encoder.patch_grid, title=f"step {step}",
                               panel=96, pairing=getattr(masker, "pairing", "all"))
    except Exception as exc:
        if "masks" not in watch.failed:
            watch.failed.add("masks")
            log.warning("could not draw the mask picture: %s", exc)
        return
    watch.aim.image(picture, "masks", step, caption=f"context and targets at step {step}")


@jepakit.hookimpl
def jepakit_on_train_end(trainer: Any, summary: dict[str, Any]) -> None:
    watch = _watches.pop(trainer, None)
    if watch is None:
        return
    samples = settings(trainer).probe_samples
    if samples and not summary.get("preempted"):
        from .probe import end_of_run_probe

        summary.update(end_of_run_probe(trainer, samples) or {})
    if watch.aim is not None:
        watch.aim.set("summary", {k: v for k, v in summary.items()
                                  if isinstance(v, (int, float, str, bool)) or v is None})
        watch.aim.close()
    if trainer.run_dir is not None and settings(trainer).loss_curve:
        from .curves import write_loss_png

        try:
            path = write_loss_png(Path(trainer.run_dir), f"{trainer.recipe.name}: "
                                                         f"{Path(trainer.run_dir).name}")
        except Exception as exc:  # a picture must never fail a finished run
            log.warning("could not write loss.png: %s", exc)
        else:
            if path is not None:
                log.info("wrote %s", path)
