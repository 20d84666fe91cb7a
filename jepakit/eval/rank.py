"""RankMe: the effective rank of a set of representations (Garrido et al., 2023,
"RankMe: Assessing the downstream performance of pretrained self-supervised
representations by their rank", arXiv 2210.02885).

``exp(entropy(p))`` of the normalised singular values ``p_k = s_k / sum(s) + eps``.
It is ``r`` for a matrix with ``r`` equal non-zero singular values and drops to 1
when every representation is the same vector up to scale: a label-free signal of
dimensional collapse that tracks downstream accuracy.
"""

from __future__ import annotations

import torch

EPS = 1e-7
"""The paper's epsilon."""


def rankme(z: torch.Tensor, eps: float = EPS) -> float:
    """Effective rank of ``z`` [N, D] (rows are samples); at most ``min(N, D)``."""
    if z.dim() != 2:
        raise ValueError(f"rankme expects [N, D], got {tuple(z.shape)}")
    return rankme_of_singular_values(torch.linalg.svdvals(z.detach().double()), eps)


def rankme_of_singular_values(s: torch.Tensor, eps: float = EPS) -> float:
    """:func:`rankme` from the singular values (e.g. the square roots of a Gram
    matrix's eigenvalues, when the matrix itself is too wide to decompose)."""
    total = s.sum()
    if not bool(total > 0):
        return 0.0
    p = s / total + eps
    return float(torch.exp(-(p * p.log()).sum()))
