"""EMA target updater: momentum schedule and the update rule."""

from __future__ import annotations

import pytest
import torch
from jepakit_ijepa.ema import EMAConfig, EMATargetUpdater
from torch import nn


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.Linear(7, 3))


def test_momentum_schedule():
    ema = EMATargetUpdater(EMAConfig(), total_steps=1000)
    assert ema.momentum(0) == pytest.approx(0.996)
    assert ema.momentum(500) == pytest.approx(0.998)
    assert ema.momentum(250) == pytest.approx(0.997)
    assert ema.momentum(1000) == pytest.approx(1.0)
    assert ema.momentum(5000) == pytest.approx(1.0)  # clamped after training
    values = [ema.momentum(s) for s in range(0, 1001, 50)]
    assert values == sorted(values)


def test_momentum_custom_range():
    ema = EMATargetUpdater(EMAConfig(start=0.9, end=0.99), total_steps=10)
    assert ema.momentum(0) == pytest.approx(0.9)
    assert ema.momentum(5) == pytest.approx(0.945)
    assert ema.momentum(10) == pytest.approx(0.99)


def test_build_is_a_frozen_deep_copy():
    online = _net()
    ema = EMATargetUpdater(EMAConfig(), total_steps=10)
    target = ema.build(online)
    assert target is not online
    for p, q in zip(online.parameters(), target.parameters(), strict=True):
        assert torch.equal(p, q)
        assert p.data_ptr() != q.data_ptr()
        assert q.requires_grad is False
        assert p.requires_grad is True
    with torch.no_grad():
        next(online.parameters()).add_(1.0)
    assert not torch.equal(next(online.parameters()), next(target.parameters()))


@pytest.mark.parametrize("step", [0, 3, 7])
def test_update_matches_reference_formula(step):
    online, ema = _net(0), EMATargetUpdater(EMAConfig(start=0.9, end=1.0), total_steps=10)
    target = ema.build(online)
    with torch.no_grad():
        for p in target.parameters():  # make target and online differ
            p.copy_(torch.randn_like(p))
    before = [p.clone() for p in target.parameters()]
    ema.update(online, target, step)
    m = ema.momentum(step)
    assert m < 1.0
    for t0, t1, o in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * o, rtol=1e-6, atol=1e-6)
        assert not torch.equal(t1, t0)


def test_update_at_the_end_changes_nothing():
    online, ema = _net(0), EMATargetUpdater(EMAConfig(), total_steps=4)
    target = _net(1)
    for p in target.parameters():
        p.requires_grad_(False)
    before = [p.clone() for p in target.parameters()]
    ema.update(online, target, 4)
    for t0, t1 in zip(before, target.parameters(), strict=True):
        assert torch.equal(t0, t1)


def test_update_leaves_online_and_its_grads_alone():
    online, ema = _net(0), EMATargetUpdater(EMAConfig(start=0.5), total_steps=2)
    target = _net(1)
    online_before = [p.clone() for p in online.parameters()]
    ema.update(online, target, 0)
    for a, b in zip(online_before, online.parameters(), strict=True):
        assert torch.equal(a, b)
        assert b.grad is None


def test_state_dict_round_trip():
    ema = EMATargetUpdater(EMAConfig(), total_steps=123)
    other = EMATargetUpdater(EMAConfig(), total_steps=1)
    other.load_state_dict(ema.state_dict())
    assert other.momentum(61) == pytest.approx(ema.momentum(61))


@pytest.mark.parametrize("kwargs", [{"start": 1.5}, {"end": -0.1}])
def test_config_bounds(kwargs):
    with pytest.raises(ValueError):
        EMAConfig(**kwargs)
