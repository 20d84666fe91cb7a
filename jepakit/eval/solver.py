"""The linear probe's numerics, sized to the data: every pass over the features is
blocked, so nothing larger than ``min(n, d)`` squared (plus one block) is ever held.

* **d <= n (primal).** The d x d covariance of the standardised features is
  eigendecomposed once, and L-BFGS runs in whitened coordinates (the preconditioning
  that makes it converge in a hundred iterations; see :mod:`jepakit.eval.probe`).
* **d > n (the span of the samples).** With an L2 penalty the optimal weights lie in
  the span of the training features (the representer theorem: a component orthogonal
  to every sample changes no logit and only adds to the penalty). :class:`Span` takes
  the n x n Gram matrix ``Z Z^T`` in one blocked pass, and its eigendecomposition
  ``Q S^2 Q^T`` gives orthonormal coordinates of that span, ``V = Z^T Q S^-1``: the
  training features there are ``Q S`` (n x r), any other row ``z`` is
  ``(z Z^T) Q S^-1``. The same probe then runs on these r <= n reduced features with
  the same objective (``|W|`` is ``|V^T W|`` for W in the span), and the weights are
  mapped back, ``W = V W_r``, in a last O(n d C) pass. Time O(n^2 d + n^3), memory
  O(n^2 + n d) for the features themselves: linear in d. This is the kernel (dual)
  form of the same regression, not an approximation (directions of the span whose
  variance is under 1e-9 of the largest, numerically null, are dropped).
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import torch

BLOCK_ELEMENTS = 1 << 24
"""Elements of one float32 working block (64 MiB)."""
NULL = 1e-9
"""Span directions with a variance under this fraction of the largest are dropped."""


def row_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, BLOCK_ELEMENTS // max(d, 1))
    for i in range(0, n, step):
        yield slice(i, min(i + step, n))


def col_blocks(n: int, d: int) -> Iterator[slice]:
    step = max(1, BLOCK_ELEMENTS // max(n, 1))
    for j in range(0, d, step):
        yield slice(j, min(j + step, d))


def column_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (population) of ``x`` [n, d] in any float dtype, in
    row blocks (two passes, float64 sums); std floored at 1e-6, so constant dimensions
    stay zero instead of exploding."""
    n, d = x.shape
    total = torch.zeros(d, dtype=torch.float64)
    for rows in row_blocks(n, d):
        total += x[rows].double().sum(0)
    mean = total / max(n, 1)
    sq = torch.zeros(d, dtype=torch.float64)
    for rows in row_blocks(n, d):
        sq += (x[rows].double() - mean).square().sum(0)
    std = (sq / max(n, 1)).sqrt()
    return mean.float(), std.float().clamp_min(1e-6)


def standardise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float() - mean) / std


def covariance(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``Z^T Z / n`` [d, d] (float64) of the standardised ``x``, in row blocks."""
    n, d = x.shape
    cov = torch.zeros(d, d, dtype=torch.float64)
    for rows in row_blocks(n, d):
        z = standardise(x[rows], mean, std)
        cov += (z.T @ z).double()
    return cov / max(n, 1)


@attrs.define
class Span:
    """Orthonormal coordinates ``V = Z^T Q S^-1`` of the span of the standardised
    training features ``Z`` (see the module docstring)."""

    mean: torch.Tensor
    std: torch.Tensor
    q_over_s: torch.Tensor
    """[n, r]: ``Q S^-1``."""
    train: torch.Tensor
    """[n, r]: the training features in the span's coordinates, ``Q S``."""

    @classmethod
    def fit(cls, x: torch.Tensor, others: tuple[torch.Tensor, ...] = ()
            ) -> tuple[Span, list[torch.Tensor]]:
        """The span of ``x`` [n, d], and each of ``others`` [m, d] in its coordinates,
        all from one blocked pass over the columns (Gram matrices only)."""
        n, d = x.shape
        mean, std = column_stats(x)
        gram = torch.zeros(n, n)
        cross = [torch.zeros(len(o), n) for o in others]
        for cols in col_blocks(n + sum(len(o) for o in others), d):
            z = standardise(x[:, cols], mean[cols], std[cols])
            gram += z @ z.T
            for o, c in zip(others, cross):
                c += standardise(o[:, cols], mean[cols], std[cols]) @ z.T
        lam, q = torch.linalg.eigh(gram.double())
        keep = lam > NULL * float(lam.max().clamp_min(1e-30))
        lam, q = lam[keep].flip(0), q[:, keep].flip(1)  # largest first
        s = lam.sqrt()
        span = cls(mean, std, (q / s).float(), (q * s).float())
        return span, [c @ span.q_over_s for c in cross]

    @property
    def rank(self) -> int:
        return int(self.q_over_s.shape[1])

    def weights(self, x: torch.Tensor, w_r: torch.Tensor) -> torch.Tensor:
        """``W = V W_r`` [d, C] for reduced weights ``W_r`` [r, C] (``x``: the training
        features the span was fitted on), in column blocks."""
        a = self.q_over_s @ w_r.float()  # [n, C]
        n, d = x.shape
        out = torch.empty(d, a.shape[1])
        for cols in col_blocks(n, d):
            out[cols] = standardise(x[:, cols], self.mean[cols], self.std[cols]).T @ a
        return out

    def reduce(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``V^T W`` [r, C] for weights ``W`` [d, C] on standardised features: the part
        of ``W`` inside the span (a warm start)."""
        n, d = x.shape
        zw = torch.zeros(n, w.shape[1])
        for cols in col_blocks(n, d):
            zw += standardise(x[:, cols], self.mean[cols], self.std[cols]) @ w[cols].float()
        return self.q_over_s.T @ zw
