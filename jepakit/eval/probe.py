"""Linear probe: multinomial logistic regression on frozen, standardised features.

The classic protocol for self-supervised representations (a linear classifier on
frozen features; I-JEPA section 5). Features fit in memory, so the classifier is
fitted full-batch with L-BFGS, a deterministic, tuning-free optimiser, instead of
SGD epochs. The L2 penalty is chosen from a small sweep on a held-out part of the
training features, then the classifier is refitted on all of them. L-BFGS runs in
whitened coordinates, so that it converges in a hundred iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F

WEIGHT_DECAYS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@attrs.define
class LinearClassifier:
    weight: torch.Tensor
    """[D, C]."""
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std) @ self.weight + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((self.predict(x) == y).float().mean()) if len(y) else float("nan")


def standardiser(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std of the training features (std floored: constant
    dimensions stay zero instead of exploding)."""
    mean = x.float().mean(0)
    std = x.float().std(0, unbiased=False).clamp_min(1e-6)
    return mean, std


def whitener(z: torch.Tensor, floor: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, P_inv)`` with ``z @ P`` decorrelated and of unit variance (eigenvalues
    floored at ``floor`` times the largest, so collinear dimensions stay finite)."""
    cov = (z.T @ z / max(len(z), 1)).double()
    lam, vecs = torch.linalg.eigh(cov)
    lam = lam.clamp_min(float(lam.max().clamp_min(1e-12)) * floor)
    return (vecs / lam.sqrt()).float(), (vecs * lam.sqrt()).T.contiguous().float()


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
               max_iter: int = 150, init: LinearClassifier | None = None) -> LinearClassifier:
    """Minimise mean cross-entropy + ``weight_decay / 2 * |W|^2`` with L-BFGS, from zero
    or warm-started from ``init``.

    L-BFGS runs on whitened coordinates (``W = P W'``, the same objective):
    self-supervised features are strongly correlated, and on standardised features
    alone L-BFGS stopped far from the optimum (Fashion-MNIST, 512-d features: 0.813
    test accuracy after 100 iterations, 0.842 after 1,000; preconditioned, 0.845 after
    100, and 300 add nothing)."""
    mean, std = standardiser(x)
    z = ((x.float() - mean) / std).contiguous()
    p, p_inv = whitener(z)
    zw = z @ p
    w = (p_inv @ init.weight if init is not None else torch.zeros(z.shape[1], num_classes))
    b = (init.bias.clone() if init is not None else torch.zeros(num_classes))
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        weight = p @ w
        loss = F.cross_entropy(zw @ w + b, y) + 0.5 * weight_decay * (weight * weight).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearClassifier((p @ w.detach()).contiguous(), b.detach(), mean, std)


def split_indices(y: torch.Tensor, fraction: float, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified (train, held-out) indices: ``fraction`` of each class held out
    (at least one example when the class has two or more)."""
    g = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        held.append(idx[:n])
        keep.append(idx[n:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


def few_shot(y: torch.Tensor, shots: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``shots`` random examples of each class (all of a smaller class)."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:shots]])
    return torch.cat(chosen).sort().values


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, weight_decays: Sequence[float] = WEIGHT_DECAYS,
                 val_fraction: float = 0.1, seed: int = 0, max_iter: int = 150,
                 sweep_samples: int = 20_000) -> dict[str, Any]:
    """Pick the weight decay on a held-out split of train, refit on all of train,
    report test accuracy.

    The sweep fits at most ``sweep_samples`` training examples, strongest penalty
    first, each fit warm-started from the previous one; the final fit starts from
    the chosen one. This keeps a probe on 60,000 x 768 features to about a minute
    on two CPU cores."""
    classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    fit_idx, val_idx = split_indices(train_y, val_fraction, seed)
    if len(fit_idx) > sweep_samples:
        g = torch.Generator().manual_seed(seed)
        fit_idx = fit_idx[torch.randperm(len(fit_idx), generator=g)[:sweep_samples]]
    sweep: dict[str, float] = {}
    init: LinearClassifier | None = None
    fits: dict[float, LinearClassifier] = {}
    if len(weight_decays) > 1 and len(val_idx) >= classes:
        for wd in sorted(weight_decays, reverse=True):
            init = fits[wd] = fit_linear(train_x[fit_idx], train_y[fit_idx], classes, wd,
                                         max_iter, init)
            sweep[f"{wd:g}"] = init.accuracy(train_x[val_idx], train_y[val_idx])
        best = max(weight_decays, key=lambda wd: (sweep[f"{wd:g}"], wd))
        init = fits[best]
    else:  # too few examples to validate (low-shot): the middle of the grid
        best = sorted(weight_decays)[len(weight_decays) // 2]
    clf = fit_linear(train_x, train_y, classes, best, max_iter, init)
    accuracy = clf.accuracy(test_x, test_y)
    per_class = {int(c): clf.accuracy(test_x[test_y == c], test_y[test_y == c])
                 for c in torch.unique(test_y)}
    return {
        "accuracy": accuracy,
        "train_accuracy": clf.accuracy(train_x, train_y),
        "weight_decay": best,
        "val_accuracy_by_weight_decay": sweep,
        "per_class_accuracy": {k: (None if math.isnan(v) else v) for k, v in per_class.items()},
        "classifier": clf,
    }
