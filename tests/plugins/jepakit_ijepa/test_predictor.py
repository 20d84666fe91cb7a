"""I-JEPA predictor: shapes and the batched-targets path."""

from __future__ import annotations

import pytest
import torch
from jepakit_ijepa.predictor import Predictor, PredictorConfig

ENC_DIM, GRID = 48, (4, 5)
N = GRID[0] * GRID[1]


@pytest.fixture()
def predictor() -> Predictor:
    torch.manual_seed(0)
    model = Predictor(PredictorConfig(embed_dim=32, depth=2, num_heads=2),
                      embed_dim=ENC_DIM, patch_grid=GRID)
    return model.eval()


def _indices(batch: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(N, generator=g)[:k].sort().values for _ in range(batch)])


def _inputs(batch: int = 3, kc: int = 9):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, kc, ENC_DIM, generator=g), _indices(batch, kc, 2)


def test_output_shapes(predictor):
    ctx, ctx_idx = _inputs()
    targets = [_indices(3, 4, s) for s in range(4)]
    out = predictor(ctx, ctx_idx, targets)
    assert len(out) == 4
    for o in out:
        assert o.shape == (3, 4, ENC_DIM)
        assert torch.isfinite(o).all()


def test_unequal_target_lengths(predictor):
    ctx, ctx_idx = _inputs()
    targets = [_indices(3, k, 10 + k) for k in (2, 5, 1)]
    out = predictor(ctx, ctx_idx, targets)
    assert [tuple(o.shape) for o in out] == [(3, 2, ENC_DIM), (3, 5, ENC_DIM), (3, 1, ENC_DIM)]
    for o, t in zip(out, targets, strict=True):
        torch.testing.assert_close(o, predictor(ctx, ctx_idx, [t])[0], atol=1e-5, rtol=1e-5)


def test_batched_equals_each_target_alone(predictor):
    ctx, ctx_idx = _inputs(batch=4, kc=7)
    targets = [_indices(4, 3, s) for s in range(5)]
    batched = predictor(ctx, ctx_idx, targets)
    for o, t in zip(batched, targets, strict=True):
        alone = predictor(ctx, ctx_idx, [t])[0]
        torch.testing.assert_close(o, alone, atol=1e-5, rtol=1e-5)
    # Targets do not see each other: changing one leaves the others' predictions alone.
    changed = predictor(ctx, ctx_idx, [targets[0], _indices(4, 3, 99), *targets[2:]])
    torch.testing.assert_close(changed[0], batched[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed[1], batched[1], atol=1e-4)


def test_predictions_depend_on_positions_and_context(predictor):
    ctx, ctx_idx = _inputs()
    t = _indices(3, 4, 0)
    base = predictor(ctx, ctx_idx, [t])[0]
    other_pos = predictor(ctx, ctx_idx, [(t + 1) % N])[0]
    other_ctx = predictor(ctx + 1.0, ctx_idx, [t])[0]
    assert not torch.allclose(base, other_pos, atol=1e-4)
    assert not torch.allclose(base, other_ctx, atol=1e-4)


def test_gradients_reach_context_and_mask_token(predictor):
    predictor.train()
    ctx, ctx_idx = _inputs()
    ctx.requires_grad_()
    out = predictor(ctx, ctx_idx, [_indices(3, 4, s) for s in range(2)])
    sum(o.square().sum() for o in out).backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    assert predictor.mask_token.grad is not None and predictor.mask_token.grad.abs().sum() > 0


def test_config_validation():
    with pytest.raises(ValueError):
        PredictorConfig(embed_dim=30, num_heads=4)
