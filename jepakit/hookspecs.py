"""pluggy hook specifications: the only way the engine learns about components.

Registration hooks follow the collect-all pattern: every plugin returns an
iterable of :class:`jepakit.Component`, the registry flattens them. Lifecycle
hooks let plugins watch training without touching the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from jepakit.registry import Component

hookspec = pluggy.HookspecMarker("jepakit")
hookimpl = pluggy.HookimplMarker("jepakit")


@hookspec
def jepakit_encoders() -> Iterable[Component]:
    """Register encoders: ``factory(config) -> module`` fitting :class:`jepakit.contracts.Encoder`.

    Example::

        @jepakit.hookimpl
        def jepakit_encoders():
            return [jepakit.Component("convnet", ConvNet, ConvNetConfig)]
    """


@hookspec
def jepakit_maskers() -> Iterable[Component]:
    """Register maskers: ``factory(config) -> masker`` fitting :class:`jepakit.contracts.Masker`.

    Maskers run inside DataLoader workers, so the object must pickle.

    Example::

        @jepakit.hookimpl
        def jepakit_maskers():
            return [jepakit.Component("checkerboard", Checkerboard, CheckerboardConfig)]
    """


@hookspec
def jepakit_predictors() -> Iterable[Component]:
    """Register predictors: ``factory(config, *, embed_dim, patch_grid) -> module``.

    The engine passes the encoder's width and patch grid.

    Example::

        @jepakit.hookimpl
        def jepakit_predictors():
            return [jepakit.Component("mlp", MLPPredictor, MLPPredictorConfig)]
    """


@hookspec
def jepakit_target_updaters() -> Iterable[Component]:
    """Register target updaters: ``factory(config, *, total_steps) -> updater``.

    Example::

        @jepakit.hookimpl
        def jepakit_target_updaters():
            return [jepakit.Component("frozen", FrozenTarget, FrozenTargetConfig)]
    """


@hookspec
def jepakit_losses() -> Iterable[Component]:
    """Register losses: ``factory(config) -> loss`` fitting :class:`jepakit.contracts.Loss`.

    Example::

        @jepakit.hookimpl
        def jepakit_losses():
            return [jepakit.Component("cosine", CosineLoss, CosineLossConfig)]
    """


@hookspec
def jepakit_datasets() -> Iterable[Component]:
    """Register data sources: ``factory(config, *, image_size, in_chans, seed) -> dataset``.

    The dataset is a map-style or iterable torch dataset yielding an image tensor
    [C, H, W] or an ``(image, label)`` pair.

    Example::

        @jepakit.hookimpl
        def jepakit_datasets():
            return [jepakit.Component("my_images", MyImages, MyImagesConfig)]
    """


@hookspec
def jepakit_on_train_start(trainer: Any) -> None:
    """Called once before the first step, with the trainer (models, recipe, run_dir).

    Example::

        @jepakit.hookimpl
        def jepakit_on_train_start(trainer):
            print("training", trainer.recipe.encoder.name, "in", trainer.run_dir)
    """


@hookspec
def jepakit_on_step_end(trainer: Any, step: int, metrics: dict[str, float]) -> None:
    """Called after every logged step with that step's metrics (already on the host),
    before they are written: a plugin may add keys to ``metrics`` (monitors do).
    ``trainer.last_batch`` holds the batch of that step, masks included. Every rank
    calls it; ``trainer.env.is_main`` tells rank 0.

    Example::

        @jepakit.hookimpl
        def jepakit_on_step_end(trainer, step, metrics):
            if metrics["loss"] > 10:
                print(f"step {step}: loss is high")
    """


@hookspec
def jepakit_on_train_end(trainer: Any, summary: dict[str, Any]) -> None:
    """Called once after the last step with the run summary.

    Example::

        @jepakit.hookimpl
        def jepakit_on_train_end(trainer, summary):
            print("final loss", summary["final_loss"])
    """
