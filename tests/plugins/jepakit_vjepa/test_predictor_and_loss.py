"""The V-JEPA predictor (mask token per configuration, positions as the encoder's) and the
L1 loss on layer-normed targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jepakit_vjepa.losses import L1Loss, L1LossConfig
from jepakit_vjepa.predictor import VJEPAPredictor, VJEPAPredictorConfig

from jepakit.errors import JepakitError

torch.set_num_threads(1)
GRID = (2, 4, 4)


def predictor(**kw) -> VJEPAPredictor:
    torch.manual_seed(0)
    config = VJEPAPredictorConfig(**{"embed_dim": 24, "depth": 2, "num_heads": 2, **kw})
    return VJEPAPredictor(config, embed_dim=32, patch_grid=GRID)


def indices():
    order = torch.stack([torch.randperm(32) for _ in range(2)])
    return order[:, :12], order[:, 12:17], order[:, 17:20]


@pytest.mark.parametrize("positions", ["sincos", "rope"])
def test_one_prediction_per_target_and_each_equals_predicting_it_alone(positions):
    pred = predictor(positions=positions).eval()
    ctx_idx, t1, t2 = indices()
    tokens = torch.randn(2, 12, 32)
    with torch.no_grad():
        both = pred(tokens, ctx_idx, [t1, t2])
        alone = [pred(tokens, ctx_idx, [t])[0] for t in (t1, t2)]
    assert [p.shape for p in both] == [(2, 5, 32), (2, 3, 32)]
    for a, b in zip(both, alone, strict=True):
        torch.testing.assert_close(a, b)


def test_the_mask_index_picks_the_configurations_mask_token():
    pred = predictor(num_mask_tokens=3).eval()
    with torch.no_grad():
        for i, token in enumerate(pred.mask_tokens):
            token.fill_(float(i))
    ctx_idx, t1, _ = indices()
    tokens = torch.randn(2, 12, 32)
    with torch.no_grad():
        outs = [pred(tokens, ctx_idx, [t1], mask_index=i)[0] for i in range(3)]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])
    out = pred.train()(tokens, ctx_idx, [t1], mask_index=2)[0]
    out.square().mean().backward()
    assert pred.mask_tokens[2].grad.abs().sum() > 0
    assert pred.mask_tokens[0].grad is None and pred.mask_tokens[1].grad is None


def test_a_mask_index_without_a_token_is_an_error_naming_the_key():
    pred = predictor(num_mask_tokens=2)
    ctx_idx, t1, _ = indices()
    with pytest.raises(JepakitError, match="num_mask_tokens=2"):
        pred(torch.randn(2, 12, 32), ctx_idx, [t1], mask_index=2)


def test_mask_tokens_start_at_zero_unless_asked():
    assert all(bool((t == 0).all()) for t in predictor().mask_tokens)
    assert all(bool((t != 0).any()) for t in predictor(zero_init_mask_tokens=False).mask_tokens)


def test_a_2d_grid_is_one_time_step():
    config = VJEPAPredictorConfig(embed_dim=24, depth=1, num_heads=2)
    pred = VJEPAPredictor(config, embed_dim=32, patch_grid=(4, 4))
    assert pred.patch_grid == (1, 4, 4)


def test_l1_on_layer_normed_targets_averaged_per_pair_as_the_official_code():
    loss = L1Loss(L1LossConfig())
    features = torch.randn(2, 32, 16) * 3 + 1
    targets = loss.prepare_targets(features)
    torch.testing.assert_close(targets, F.layer_norm(features, (16,)))
    preds = [torch.randn(2, 5, 16), torch.randn(2, 20, 16)]
    tgts = [targets[:, :5], targets[:, 5:25]]
    official = sum((p - t).abs().mean() for p, t in zip(preds, tgts, strict=True)) / 2
    torch.testing.assert_close(loss(preds, tgts), official)
    tokens = L1Loss(L1LossConfig(reduction="tokens"))(preds, tgts)
    pooled = torch.cat([(p - t).abs().reshape(-1) for p, t in zip(preds, tgts, strict=True)]).mean()
    torch.testing.assert_close(tokens, pooled)
    assert not torch.allclose(tokens, official)
