"""Conformance kit for every component kind but maskers (those have ``jepakit.testing``).

In the spirit of timm's ``tests/test_models.py``: one check per kind, run over
everything registered, shipped or third-party::

    from jepakit.conformance import check_component
    from jepakit.registry import default_registry

    registry = default_registry()
    for kind in ("method", "encoder", "predictor", "projector", "target_updater", "loss"):
        for name in registry.components(kind):
            check_component(registry, kind, name)

Each check builds a small instance from the component's registered ``example``
params (``jepakit.Component(..., example={...})``; a method's example is the component
sections of a small recipe), runs it forward and backward on random inputs, and
raises :class:`ComponentError` naming the rule it broke: output shapes, no NaN or
infinity, a gradient on every trainable parameter, and state that round-trips.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from jepakit.contracts import Masks, StepOutputs
from jepakit.losses import DEFAULT_INPUTS, LossTerms

WIDTH = 32
"""The embedding width the predictor, projector and loss checks use."""
GRID = (4, 4)
"""The patch grid the predictor check uses."""
VIDEO_GRID = (2, 4, 4)
"""The (frames, rows, columns) grid it also uses for a predictor whose class declares
``grid_ranks`` with 3 in it (default ``(2,)``: image grids only)."""


class ComponentError(AssertionError):
    """A component broke its contract; the message names the component and the rule."""


def _fail(kind: str, name: str, message: str) -> ComponentError:
    return ComponentError(f"{kind} '{name}': {message}")


def _finite(t: torch.Tensor, kind: str, name: str, what: str) -> None:
    if not bool(torch.isfinite(t.detach()).all()):
        raise _fail(kind, name, f"{what} holds NaN or infinite values")


def _grads(modules: list[nn.Module], kind: str, name: str) -> None:
    """Every trainable parameter received a finite gradient."""
    for module in modules:
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                raise _fail(kind, name, f"trainable parameter '{pname}' got no gradient")
            _finite(p.grad, kind, name, f"the gradient of '{pname}'")


def _build(registry: Any, kind: str, name: str, **context: Any) -> Any:
    component = registry.get(kind, name)
    return registry.create(kind, name, dict(component.example), path=f"{kind}.example",
                           **context)


def sample_input(encoder: Any, batch: int, shrink: int = 1) -> torch.Tensor:
    """Random input for ``encoder``: images [B, C, H, W], or clips [B, C, T, H, W] for a
    video encoder (one with ``num_frames``); ``shrink`` divides H and W."""
    h, w = (int(s) // shrink for s in encoder.image_size)
    frames = getattr(encoder, "num_frames", None)
    time = () if frames is None else (int(frames),)
    return torch.randn(batch, int(encoder.in_chans), *time, h, w)


def check_encoder(registry: Any, name: str) -> None:
    """``encoder(images)`` -> [B, N, D] over the patch grid (of any rank: N is its
    product), ``keep`` -> [B, K, D]; a video encoder gets clips [B, C, T, H, W]."""
    torch.manual_seed(0)
    enc = _build(registry, "encoder", name)
    for attr in ("embed_dim", "patch_grid", "image_size", "in_chans"):
        if not hasattr(enc, attr):
            raise _fail("encoder", name, f"has no '{attr}' attribute (the encoder contract)")
    n = math.prod(int(s) for s in enc.patch_grid)
    images = sample_input(enc, 2)
    tokens = enc(images)
    if tuple(tokens.shape) != (2, n, int(enc.embed_dim)):
        raise _fail("encoder", name, f"encoder(images) gave {tuple(tokens.shape)}, expected "
                    f"(2, {n}, {enc.embed_dim}) for a {tuple(enc.patch_grid)} patch grid")
    keep = torch.stack([torch.randperm(n)[: max(1, n // 2)] for _ in range(2)])
    kept = enc(images, keep=keep)
    if tuple(kept.shape) != (2, keep.shape[1], int(enc.embed_dim)):
        raise _fail("encoder", name, f"encoder(images, keep=[2, {keep.shape[1]}]) gave "
                    f"{tuple(kept.shape)}")
    _finite(tokens, "encoder", name, "the tokens")
    (tokens.square().mean() + kept.square().mean()).backward()
    _grads([enc], "encoder", name)


def check_predictor(registry: Any, name: str) -> None:
    """One [B, Kt, D] prediction per target block, from context tokens and indices, on
    an image grid and, when the predictor's class declares ``grid_ranks`` with 3, on a
    video grid."""
    ranks = tuple(getattr(registry.get("predictor", name).factory, "grid_ranks", (2,)))
    for grid in (GRID, VIDEO_GRID):
        if len(grid) in ranks:
            _check_predictor_on(registry, name, grid)


def _check_predictor_on(registry: Any, name: str, grid: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    pred = _build(registry, "predictor", name, embed_dim=WIDTH, patch_grid=grid)
    n, where = math.prod(grid), f"on a {'x'.join(map(str, grid))} grid"
    k = n // 2
    order = torch.stack([torch.randperm(n) for _ in range(2)])
    context_idx, targets = order[:, :k], [order[:, k:k + 3], order[:, k + 3:k + 6]]
    tokens = torch.randn(2, k, WIDTH, requires_grad=True)
    out = pred(tokens, context_idx, targets)
    if len(out) != len(targets):
        raise _fail("predictor", name, f"gave {len(out)} predictions for {len(targets)} targets "
                    f"{where}")
    for p, t in zip(out, targets, strict=True):
        if tuple(p.shape) != (2, t.shape[1], WIDTH):
            raise _fail("predictor", name, f"a prediction is {tuple(p.shape)}, expected "
                        f"(2, {t.shape[1]}, {WIDTH}) {where}")
        _finite(p, "predictor", name, "a prediction")
    sum(p.square().mean() for p in out).backward()
    _grads([pred], "predictor", name)
    if tokens.grad is None:
        raise _fail("predictor", name, f"no gradient reaches the context tokens {where}")


def check_projector(registry: Any, name: str) -> None:
    """[B, D] -> [B, out_dim], trainable end to end."""
    torch.manual_seed(0)
    proj = _build(registry, "projector", name, embed_dim=WIDTH)
    x = torch.randn(8, WIDTH, requires_grad=True)
    out = proj(x)
    if out.ndim != 2 or out.shape[0] != 8 or out.shape[1] != int(getattr(proj, "out_dim", -1)):
        raise _fail("projector", name, f"gave {tuple(out.shape)} for [8, {WIDTH}] (expected "
                    f"[8, out_dim={getattr(proj, 'out_dim', '?')}])")
    _finite(out, "projector", name, "the output")
    out.square().mean().backward()
    _grads([proj], "projector", name)


def sample_outputs(views: int = 4, num_global: int = 2) -> StepOutputs:
    """Step outputs with every field a loss may read, on leaf tensors that want gradients."""
    g = torch.Generator().manual_seed(0)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(True)

    return StepOutputs(predictions=[leaf(2, 5, WIDTH), leaf(2, 3, WIDTH)],
                       targets=[torch.randn(2, 5, WIDTH, generator=g),
                                torch.randn(2, 3, WIDTH, generator=g)],
                       embeddings=[leaf(16, WIDTH) for _ in range(views)],
                       num_global=num_global, target_features=torch.randn(2, 16, WIDTH),
                       step=3, seed=0)


def check_loss(registry: Any, name: str) -> None:
    """A finite scalar (or dict of scalar terms) whose gradient reaches what it reads."""
    fn = _build(registry, "loss", name)
    inputs = getattr(fn, "inputs", DEFAULT_INPUTS)
    outputs = sample_outputs()
    try:
        outputs.read(inputs)
    except ValueError as exc:
        raise _fail("loss", name, str(exc)) from None
    prepare = getattr(fn, "prepare_targets", None)
    if prepare is not None:
        raw = torch.randn(2, 16, WIDTH)
        if tuple(prepare(raw).shape) != tuple(raw.shape):
            raise _fail("loss", name, "prepare_targets changed the features' shape")
    total, terms = LossTerms([(name, 1.0, fn)])(outputs)
    if total.ndim != 0:
        raise _fail("loss", name, f"returned shape {tuple(total.shape)}, expected a scalar")
    _finite(total, "loss", name, "the loss")
    if total.requires_grad:
        total.backward()
    leaves = [t for field in ("predictions", "embeddings") if field in inputs
              for t in getattr(outputs, field)]
    if leaves and all(t.grad is None or not bool(t.grad.abs().sum() > 0) for t in leaves):
        raise _fail("loss", name, f"no gradient reaches its inputs {list(inputs)}")


def check_target_updater(registry: Any, name: str) -> None:
    """``build`` gives the online module or a frozen copy equal to it; ``update`` moves a
    copy towards the online weights (or leaves it); ``momentum`` in [0, 1]; state
    round-trips."""
    torch.manual_seed(0)
    updater = _build(registry, "target_updater", name, total_steps=10)
    online = _reference_encoder(registry)
    target = updater.build(online)
    for step in (0, 5, 9):
        m = float(updater.momentum(step))
        if not 0.0 <= m <= 1.0:
            raise _fail("target_updater", name, f"momentum({step}) = {m}, outside [0, 1]")
    if target is not online:
        if any(p.requires_grad for p in target.parameters()):
            raise _fail("target_updater", name, "the target copy's parameters require grad")
        with torch.no_grad():
            for p in online.parameters():
                p.add_(1.0)
            before = [p.clone() for p in target.parameters()]
            updater.update(online, target, 0)
        for b, p, o in zip(before, target.parameters(), online.parameters(), strict=True):
            if (p - o).abs().sum() > (b - o).abs().sum() + 1e-6:
                raise _fail("target_updater", name, "update moved the target away from the "
                            "online weights")
    state = updater.state_dict()
    updater.load_state_dict(copy.deepcopy(state))


def _reference_encoder(registry: Any) -> nn.Module:
    """A small encoder to build targets and methods around: the first registered one
    whose example builds."""
    for enc_name in registry.components("encoder"):
        try:
            return _build(registry, "encoder", enc_name)
        except Exception:  # noqa: BLE001 (try the next)
            continue
    raise ComponentError("no registered encoder builds from its example params")


def check_method(registry: Any, name: str) -> None:
    """One step on a small recipe built from the method's ``example``: a finite scalar
    loss, a gradient on every trainable parameter, after-optimizer work, an evaluation
    encoder that gives tokens, and module and extra state that round-trip."""
    from jepakit.data.loader import Batch
    from jepakit.method import build_method
    from jepakit.recipe import load_recipe

    component = registry.get("method", name)
    if not component.example:
        raise _fail("method", name, "registers no example (the component sections of a small "
                    "recipe) for the conformance kit")
    data = {"method": {"name": name}, **copy.deepcopy(dict(component.example)),
            "data": {"name": _any_dataset(registry)}, "train": {"steps": 2, "batch_size": 4}}
    recipe = load_recipe(data, (), registry)
    torch.manual_seed(0)
    method, masker = build_method(recipe, registry, "cpu")
    enc = method.eval_encoder()
    images = sample_input(enc, 4)
    masks: Masks | None = None
    if masker is not None:
        masks = masker(4, tuple(enc.patch_grid), torch.Generator().manual_seed(0))
    small = [sample_input(enc, 4, shrink=2) for _ in range(2)]
    batch = Batch(images=images, labels=None, masks=masks,
                  views=[images, torch.randn_like(images), *small])
    result = method(batch, 0)
    if result.loss.ndim != 0:
        raise _fail("method", name, f"loss has shape {tuple(result.loss.shape)}")
    _finite(result.loss, "method", name, "the loss")
    result.loss.backward()
    _grads(method.trainable(), "method", name)
    method.after_optimizer_step(0)
    tokens = method.eval_encoder()(images)
    _finite(tokens, "method", name, "the evaluation encoder's tokens")
    method.load_extra_state(copy.deepcopy(method.extra_state()))
    method.load_state_dict(copy.deepcopy(method.state_dict()))


def _any_dataset(registry: Any) -> str:
    """A registered dataset whose defaults validate (the method check builds no data)."""
    for data_name in sorted(registry.components("dataset")):
        try:
            registry.config("dataset", data_name, {})
        except Exception:  # noqa: BLE001 (needs a path: try the next)
            continue
        return str(data_name)
    raise ComponentError("no registered dataset validates with its defaults")


CHECKS: dict[str, Callable[[Any, str], None]] = {
    "method": check_method,
    "encoder": check_encoder,
    "predictor": check_predictor,
    "projector": check_projector,
    "target_updater": check_target_updater,
    "loss": check_loss,
}


def check_component(registry: Any, kind: str, name: str) -> None:
    """Run the kit's check for one registered component (maskers: ``jepakit.testing``)."""
    if kind == "masker":
        from jepakit.testing import check_masker

        check_masker(registry, name)
        return
    if kind not in CHECKS:
        raise ValueError(f"no conformance check for kind '{kind}'")
    CHECKS[kind](registry, name)
