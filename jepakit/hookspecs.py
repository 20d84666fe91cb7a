"""pluggy hook specifications: the only way the engine learns about components.

Registration hooks (one per component kind, generated from ``jepakit/kinds.py``)
follow the collect-all pattern: every plugin returns an iterable of
:class:`jepakit.Component`, the registry flattens them. Lifecycle
hooks let plugins watch training without touching the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from jepakit.kinds import KINDS, Kind

if TYPE_CHECKING:
    from jepakit.registry import Component

hookspec = pluggy.HookspecMarker("jepakit")
hookimpl = pluggy.HookimplMarker("jepakit")


def _registration_spec(kind: Kind) -> Callable[[], Iterable[Component]]:
    def spec() -> Iterable[Component]:
        raise NotImplementedError  # a spec is never called; pluggy calls the plugins

    spec.__name__ = spec.__qualname__ = kind.hook
    where = f"recipe section ``{kind.section}``" if kind.section else "not in recipes"
    spec.__doc__ = (
        f"Register {kind.name} components ({where}): "
        f"``{kind.factory}``.\n\n    Example::\n\n        @jepakit.hookimpl\n"
        f"        def {kind.hook}():\n            return [{kind.example}]\n    "
    )
    return hookspec(spec)


# One registration hook per kind, generated from the kinds table (jepakit/kinds.py):
# jepakit_methods, jepakit_encoders, jepakit_maskers, jepakit_predictors, jepakit_projectors,
# jepakit_target_updaters, jepakit_losses, jepakit_datasets.
for _kind in KINDS:
    globals()[_kind.hook] = _registration_spec(_kind)


@hookspec
def jepakit_recipe_sections() -> Iterable[Any]:
    """Own a top-level recipe section: return ``jepakit.Section(name, config)`` specs. The
    section's YAML is checked against the attrs ``config`` class like component params
    (overrides ``name.key=value`` included) and reaches the plugin as
    ``trainer.recipe.section(name)``, defaults filled in when the recipe has none.

    Example::

        @jepakit.hookimpl
        def jepakit_recipe_sections():
            return [jepakit.Section("my_monitor", MyMonitorConfig)]
    """


@hookspec
def jepakit_shard_formats() -> Iterable[Any]:
    """Add source formats to ``jepakit shards make --format``: return
    ``jepakit.data.shards.ShardFormat(name, open, help)`` specs, where
    ``open(src, options) -> Source`` lists the samples to write (``options``: the
    command's split, seed, count, frames and fps).

    Example::

        @jepakit.hookimpl
        def jepakit_shard_formats():
            return [ShardFormat("my-videos", open_my_videos, "my camera's recordings")]
    """


@hookspec
def jepakit_on_train_start(trainer: Any) -> None:
    """Called once before the first step, with the trainer (models, recipe, run_dir).

    Example::

        @jepakit.hookimpl
        def jepakit_on_train_start(trainer):
            print("training", trainer.recipe.spec("encoder").name, "in", trainer.run_dir)
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
