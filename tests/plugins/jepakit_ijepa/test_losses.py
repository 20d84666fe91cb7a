"""Regression losses and the target transform."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jepakit_ijepa.losses import L2Loss, RegressionLossConfig, SmoothL1Loss


def _pairs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 3, 8), (2, 5, 8), (2, 1, 8)]  # unequal target lengths
    preds = [torch.randn(s, generator=g) * 2 for s in shapes]
    tgts = [torch.randn(s, generator=g) * 2 for s in shapes]
    return preds, tgts


def test_smooth_l1_matches_reference():
    preds, tgts = _pairs()
    loss = SmoothL1Loss(RegressionLossConfig())(preds, tgts)
    diffs = torch.cat([(p - t).reshape(-1) for p, t in zip(preds, tgts)]).abs()
    reference = torch.where(diffs < 1, 0.5 * diffs**2, diffs - 0.5).mean()
    assert loss.ndim == 0
    torch.testing.assert_close(loss, reference)
    # Both regimes of the smooth L1 are exercised.
    assert (diffs < 1).any() and (diffs >= 1).any()


def test_l2_matches_reference():
    preds, tgts = _pairs(1)
    loss = L2Loss(RegressionLossConfig())(preds, tgts)
    total = sum(((p - t) ** 2).sum() for p, t in zip(preds, tgts))
    count = sum(p.numel() for p in preds)
    torch.testing.assert_close(loss, total / count)


def test_losses_differ_and_are_zero_at_the_target():
    preds, tgts = _pairs(2)
    cfg = RegressionLossConfig()
    assert float(SmoothL1Loss(cfg)(preds, tgts)) != pytest.approx(float(L2Loss(cfg)(preds, tgts)))
    assert float(L2Loss(cfg)(tgts, tgts)) == 0.0


def test_loss_gradient_flows_to_predictions():
    preds, tgts = _pairs(3)
    preds = [p.requires_grad_() for p in preds]
    SmoothL1Loss(RegressionLossConfig())(preds, tgts).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in preds)


def test_mismatched_counts():
    preds, tgts = _pairs()
    with pytest.raises(ValueError):
        L2Loss(RegressionLossConfig())(preds, tgts[:2])


def test_prepare_targets_layer_norm():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(3, 10, 16, generator=g) * 5 + 3
    out = SmoothL1Loss(RegressionLossConfig(normalize_targets=True)).prepare_targets(features)
    assert out.shape == features.shape
    torch.testing.assert_close(out.mean(-1), torch.zeros(3, 10), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(3, 10), atol=1e-3, rtol=0)
    torch.testing.assert_close(out, F.layer_norm(features, (16,)))


def test_prepare_targets_identity_when_off():
    features = torch.randn(2, 4, 8) * 5 + 3
    out = L2Loss(RegressionLossConfig(normalize_targets=False)).prepare_targets(features)
    assert torch.equal(out, features)
