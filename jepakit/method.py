"""Build a recipe's method: its components first, in the order the kinds table gives,
then the method that owns them (``jepakit.contracts.Method``).

The engine knows no method by name; it builds what the method declares in its
``components`` and passes each by kind name to the method's factory.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jepakit.contracts import Masker
from jepakit.errors import JepakitError
from jepakit.kinds import RECIPE_KINDS
from jepakit.losses import LossTerms
from jepakit.recipe import Recipe, method_components

BUILT_BY_ENGINE = ("method", "dataset", "masker")
"""Kinds the method factory is not given: the masker runs in the engine's mask stream."""


def build_method(recipe: Recipe, registry: Any, device: torch.device | str = "cpu",
                 total_steps: int | None = None) -> tuple[Any, Masker | None]:
    """The method's modules on ``device`` (``"meta"`` builds without memory), and the
    masker when the method uses one.

    Components are created in a fixed order (encoder, predictor, projector, target
    updater, losses), so a seed gives the same initial weights for any method.
    """
    total = total_steps if total_steps is not None else recipe.train.total_steps
    method_spec = recipe.spec("method")
    uses = method_components(registry, method_spec.name)
    parts: dict[str, Any] = {}
    with torch.device(device):
        for kind in RECIPE_KINDS:
            if kind.name in BUILT_BY_ENGINE or kind.name not in uses or not recipe.has(kind.name):
                continue
            if kind.many:
                parts[kind.name] = LossTerms([
                    (spec.name, spec.weight,
                     registry.create(kind.name, spec.name, spec.params,
                                     path=f"{kind.section}.params"))
                    for spec in recipe.specs(kind.name)])
                continue
            spec = recipe.spec(kind.name)
            parts[kind.name] = registry.create(kind.name, spec.name, spec.params,
                                               path=f"{kind.section}.params",
                                               **_context(kind.name, parts, total))
        method = registry.create("method", method_spec.name, method_spec.params,
                                 path="method.params", seed=recipe.train.seed, **parts)
    masker = None
    if recipe.has("masker") and "masker" in uses:
        spec = recipe.spec("masker")
        masker = registry.create("masker", spec.name, spec.params, path="masker.params")
    return method, masker


def _context(kind: str, parts: dict[str, Any], total_steps: int) -> dict[str, Any]:
    """Facts the engine knows and a recipe should not repeat, per kind's factory."""
    encoder = parts.get("encoder")
    if kind == "predictor" and encoder is not None:
        return {"embed_dim": encoder.embed_dim, "patch_grid": tuple(encoder.patch_grid)}
    if kind == "projector" and encoder is not None:
        return {"embed_dim": encoder.embed_dim}
    if kind == "target_updater":
        return {"total_steps": total_steps}
    return {}


def input_shape(method: nn.Module) -> tuple[int, int, int]:
    """(channels, height, width) of the method's encoder input."""
    encoder = getattr(method, "encoder")  # noqa: B009 (contract attribute)
    h, w = encoder.image_size
    return int(encoder.in_chans), int(h), int(w)


def sample_shape(encoder: Any) -> tuple[int, ...]:
    """One input sample's shape: (C, T, H, W) for a video encoder (it has ``num_frames``),
    else (C, H, W)."""
    h, w = encoder.image_size
    frames = getattr(encoder, "num_frames", None)
    t = () if frames is None else (int(frames),)
    return (int(encoder.in_chans), *t, int(h), int(w))


def module_states(method: nn.Module) -> dict[str, Any]:
    """Each module the method owns, by attribute name (``encoder``, ``target_encoder``,
    ...); a module shared under two names (a target that is the online encoder) once."""
    return {name: child.state_dict() for name, child in method.named_children()}


def load_module_states(method: Any, state: dict[str, Any]) -> None:
    """The inverse of :func:`module_states` plus the method's extra state; a checkpoint
    from before methods existed keeps its target updater state at the top level."""
    for name, child in method.named_children():
        if name not in state:
            raise JepakitError(f"the checkpoint holds no '{name}' weights for this recipe's "
                               f"method (it holds: {', '.join(sorted(map(str, state)))})")
        child.load_state_dict(state[name])
    extra = state.get("method_state")
    if extra is None and "target_updater" in state:
        extra = {"target_updater": state["target_updater"]}
    if extra is not None:
        method.load_extra_state(extra)
