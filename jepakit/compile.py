"""Compile the modules a training step runs, one graph per input shape, and count the graphs.

``compile_modules(encoder, predictor, target_encoder)`` compiles each module's
forward in place (``nn.Module.compile``: parameters, ``state_dict`` keys and
checkpoints are unchanged) with static shapes: every distinct input shape gets
its own graph, specialised and fused by inductor, and none runs slower
dynamic-shape code. With a masker that draws few token counts
(``length_buckets``) that is a handful of graphs for a whole run; without, a new
graph for every mask size it draws, so the engine warns.

Each compilation goes through a counting backend, so :func:`compilations` says
how many graphs a module has built (graph breaks count: each part is a graph).
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch._dynamo
from torch import nn

log = logging.getLogger("jepakit")

BACKEND = os.environ.get("JEPAKIT_COMPILE_BACKEND", "inductor")
"""The torch.compile backend. ``aot_eager`` or ``eager`` (tests, ``benchmarks/gpu.sh``'s
dry run) trace the same graphs and recompile on the same shapes without generating code."""
MAX_GRAPHS_PER_MODULE = 64
"""Graphs a module may build before torch falls back to running it uncompiled."""

_COUNTS: weakref.WeakKeyDictionary[nn.Module, list[int]] = weakref.WeakKeyDictionary()


def _counting(module: nn.Module, backend: str) -> Callable[..., Any]:
    inner = torch._dynamo.lookup_backend(backend)
    count = _COUNTS.setdefault(module, [0])

    def compile_graph(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        count[0] += 1
        return inner(graph, example_inputs)

    return compile_graph


def compile_modules(*modules: nn.Module, backend: str | None = None,
                    max_graphs: int = MAX_GRAPHS_PER_MODULE) -> None:
    """Compile each module's forward in place for static shapes with ``backend``
    (default :data:`BACKEND`)."""
    backend = backend or BACKEND
    # torch keeps one recompile budget per code object, and every compiled module shares
    # nn.Module's call code: raise it so all modules' buckets fit.
    config: Any = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, max_graphs * len(modules))
    config.accumulated_recompile_limit = max(config.accumulated_recompile_limit,
                                             4 * max_graphs * len(modules))
    for module in modules:
        module.compile(backend=_counting(module, backend), dynamic=False)


def compilations(module: nn.Module) -> int:
    """Graphs compiled so far for ``module`` (0 when it was not compiled here)."""
    return _COUNTS.get(module, [0])[0]


def static_shapes(masker: Any, patch_grid: tuple[int, ...], batch_size: int) -> bool:
    """Whether ``masker`` draws its token counts from a fixed set (``length_buckets``),
    so a compiled step meets a few shapes only."""
    levels = getattr(masker, "length_levels", None)
    return callable(levels) and levels(patch_grid, batch_size) is not None


def warn_if_unbucketed(masker: Any, patch_grid: tuple[int, ...], batch_size: int) -> None:
    """Log a warning when ``masker`` draws token counts from no fixed set: a compiled
    step then builds a graph for every mask size it meets."""
    if not static_shapes(masker, patch_grid, batch_size):
        log.warning("train.compile: the masker draws a new token count most batches, and each "
                    "compiles a new graph; set masker.params.length_buckets (e.g. 3) so a few "
                    "graphs serve the run")
