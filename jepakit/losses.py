"""Composed loss terms: a recipe's ``loss`` section may name several weighted losses
(``smooth_l1`` plus ``sigreg`` at 0.05); each reads the step outputs it names and
is logged as ``loss/<term>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from jepakit.contracts import StepOutputs

DEFAULT_INPUTS = ("predictions", "targets")
"""What a loss without an ``inputs`` attribute reads (the original two-argument contract)."""


class LossTerms:
    """The weighted sum of a recipe's loss components."""

    def __init__(self, terms: Sequence[tuple[str, float, Any]]) -> None:
        if not terms:
            raise ValueError("a method needs at least one loss term")
        self.terms = [(name, float(weight), fn) for name, weight, fn in terms]
        names = [name for name, _, _ in self.terms]
        self.names = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]

    @property
    def inputs(self) -> set[str]:
        """Every step output some term reads: a method may skip computing the others."""
        return {i for _, _, fn in self.terms for i in getattr(fn, "inputs", DEFAULT_INPUTS)}

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        """The first target-reading term's ``prepare_targets`` (identity if none has one)."""
        for _, _, fn in self.terms:
            prepare = getattr(fn, "prepare_targets", None)
            if prepare is not None and "targets" in getattr(fn, "inputs", DEFAULT_INPUTS):
                return prepare(features)
        return features

    def __call__(self, outputs: StepOutputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, {term name: unweighted value}); a term returning a dict of parts adds
        each part as ``<term>/<part>`` (its value is their sum)."""
        total: torch.Tensor | None = None
        logged: dict[str, torch.Tensor] = {}
        for name, (_, weight, fn) in zip(self.names, self.terms):
            value = fn(*outputs.read(getattr(fn, "inputs", DEFAULT_INPUTS), f"loss '{name}'"))
            if isinstance(value, dict):
                for part, v in value.items():
                    logged[f"{name}/{part}"] = v.detach()
                value = sum(value.values())
            logged[name] = value.detach()
            contribution = value if weight == 1.0 else weight * value
            total = contribution if total is None else total + contribution
        assert total is not None
        return total, logged


class TokenRegression:
    """Base of the losses that regress predicted target tokens (I-JEPA's smooth L1 / L2,
    data2vec's): ``prepare_targets`` normalises raw target features, ``distance`` compares
    all (prediction, target) token pairs at once, in fp32. Subclasses set both."""

    inputs: tuple[str, ...] = DEFAULT_INPUTS

    def prepare_targets(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def distance(self, pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, predictions: Sequence[torch.Tensor],
                 targets: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
        pred = torch.cat([p.reshape(-1, p.shape[-1]) for p in predictions])
        tgt = torch.cat([t.reshape(-1, t.shape[-1]) for t in targets]).to(pred.dtype)
        return self.distance(pred.float(), tgt.float())
