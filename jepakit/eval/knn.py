"""Weighted k-nearest-neighbour classification on frozen features: the cheap
monitor of representation quality (Wu et al., 2018, arXiv 1805.01978; the
protocol of DINO, Caron et al., 2021, arXiv 2104.14294: cosine similarity,
k = 20, votes weighted by exp(similarity / 0.07)). No training, one matrix
product per chunk of queries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, query_x: torch.Tensor,
                k: int = 20, temperature: float = 0.07, num_classes: int | None = None,
                chunk: int = 1024) -> torch.Tensor:
    """Predicted labels [Q] for the queries."""
    if len(train_x) == 0:
        raise ValueError("k-NN needs at least one training example")
    classes = int(num_classes or int(train_y.max()) + 1)
    k = min(k, len(train_x))
    bank = F.normalize(train_x.float(), dim=1)
    out = []
    for start in range(0, len(query_x), chunk):
        q = F.normalize(query_x[start:start + chunk].float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(q), classes, dtype=weights.dtype)
        votes.scatter_add_(1, train_y[idx], weights)
        out.append(votes.argmax(1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, k: int = 20, temperature: float = 0.07) -> float:
    classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    pred = knn_predict(train_x, train_y, test_x, k, temperature, classes)
    return float((pred == test_y).float().mean())
