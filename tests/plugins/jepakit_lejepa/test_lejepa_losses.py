"""LeJEPA's loss terms against hand computation; gradients reach every projector parameter."""

from __future__ import annotations

import pytest
import torch
from jepakit_lejepa.losses import (
    InvarianceLoss,
    LeJEPALoss,
    LeJEPALossConfig,
    SIGRegConfig,
    SIGRegLoss,
    step_generator,
)
from jepakit_lejepa.projector import MLPProjector, ProjectorConfig
from jepakit_lejepa.sigreg import epps_pulley, random_directions

from jepakit.config import structure
from jepakit.errors import ConfigError


def views(count: int = 4, batch: int = 8, dim: int = 6, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, dim, generator=g) for _ in range(count)]


def test_inputs_name_what_each_loss_reads():
    assert SIGRegLoss.inputs == ("embeddings", "step", "seed")
    assert InvarianceLoss.inputs == ("embeddings", "num_global")
    assert LeJEPALoss.inputs == ("embeddings", "num_global", "step", "seed")


def test_invariance_by_hand():
    # two global views and one local, batch 1, two dims
    a, b, c = torch.tensor([[0.0, 2.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[4.0, 4.0]])
    # center (1, 1); squared differences (1, 1), (1, 1), (9, 9): mean over 3 views x 2 dims
    assert float(InvarianceLoss()([a, b, c], num_global=2)) == pytest.approx(22 / 6)
    # with one global view the center is that view itself
    assert float(InvarianceLoss()([a, b, c], num_global=1)) == pytest.approx((0 + 8 + 20) / 6)


def test_invariance_is_zero_for_identical_views_and_checks_num_global():
    z = views(1)[0]
    assert float(InvarianceLoss()([z, z.clone(), z.clone()], num_global=2)) == 0.0
    with pytest.raises(ValueError, match="num_global=3 for 2"):
        InvarianceLoss()([z, z], num_global=3)


def test_sigreg_is_the_average_of_per_view_statistics_with_shared_directions():
    zs = views(3, batch=32)
    loss = SIGRegLoss(SIGRegConfig(num_directions=16, knots=9, t_max=2.5))
    a = random_directions(6, 16, step_generator(5, 12))
    expected = sum(float(epps_pulley(z, a, 9, 2.5)) for z in zs) / 3
    assert float(loss(zs, step=12, seed=5)) == pytest.approx(expected, rel=1e-6)
    flattened = float(epps_pulley(torch.cat(zs), a, 9, 2.5))
    assert float(loss(zs, step=12, seed=5)) != pytest.approx(flattened, rel=1e-3)


def test_token_embeddings_are_tested_as_one_sample_per_token():
    tokens = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(2))
    loss = SIGRegLoss(SIGRegConfig(num_directions=8))
    assert float(loss([tokens], step=0, seed=0)) == float(loss([tokens.reshape(20, 6)], 0, 0))


def test_directions_are_redrawn_each_step_and_repeat_for_the_same_seed_and_step():
    zs = views(2, batch=32)
    loss = SIGRegLoss(SIGRegConfig(num_directions=8))
    assert float(loss(zs, step=4, seed=1)) == float(loss(zs, step=4, seed=1))
    assert float(loss(zs, step=4, seed=1)) != float(loss(zs, step=5, seed=1))
    assert float(loss(zs, step=4, seed=1)) != float(loss(zs, step=4, seed=2))


def test_lejepa_is_the_convex_combination():
    zs = views(4, batch=16)
    config = LeJEPALossConfig(lambda_=0.2, num_directions=32)
    terms = LeJEPALoss(config)(zs, num_global=2, step=3, seed=9)
    assert set(terms) == {"sigreg", "invariance"}
    sigreg = float(SIGRegLoss(SIGRegConfig(num_directions=32))(zs, step=3, seed=9))
    z = torch.stack(zs)
    invariance = float(((z - z[:2].mean(0)) ** 2).mean())
    assert float(terms["sigreg"]) == pytest.approx(0.2 * sigreg, rel=1e-6)
    assert float(terms["invariance"]) == pytest.approx(0.8 * invariance, rel=1e-6)
    only_sigreg = LeJEPALoss(LeJEPALossConfig(lambda_=1.0, num_directions=32))(zs, 2, 3, 9)
    assert float(only_sigreg["invariance"]) == 0.0


def test_lambda_outside_zero_one_is_a_config_error():
    with pytest.raises(ConfigError, match="loss.params.lambda_"):
        structure(LeJEPALossConfig, {"lambda_": 1.5}, "loss.params")
    assert LeJEPALossConfig().lambda_ == 0.05 and LeJEPALossConfig().num_directions == 1024


def test_gradients_reach_every_projector_parameter():
    torch.manual_seed(0)
    projector = MLPProjector(ProjectorConfig(hidden_dim=32, out_dim=8), embed_dim=12)
    features = torch.randn(4 * 10, 12)  # 4 views of 10 samples, projected together
    out = projector(features).split(10)
    terms = LeJEPALoss(LeJEPALossConfig(num_directions=16))(list(out), num_global=2, step=0,
                                                            seed=0)
    sum(terms.values()).backward()
    for name, p in projector.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
