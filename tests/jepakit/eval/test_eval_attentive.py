"""The attentive probe reads the one token that carries the label, which average pooling
cannot; the batched settings train independently."""

from __future__ import annotations

import torch

from jepakit.eval.attentive import BatchedPooler, attention_heads, attentive_probe
from jepakit.eval.probe import linear_probe


def one_token_task(n: int, tokens: int = 8, width: int = 16, seed: int = 0):
    """Each sample: Gaussian tokens; one random token is marked (dimension 0 = 4) and
    carries the label as the sign of dimension 1 (+-3); an unmarked decoy carries the
    opposite sign, so the average over tokens holds no trace of the label."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, tokens, width, generator=g) * 0.5
    y = torch.randint(2, (n,), generator=g)
    rows = torch.arange(n)
    pos = torch.rand(n, tokens, generator=g).argsort(1)
    carrier, decoy = pos[:, 0], pos[:, 1]
    sign = y.float() * 2 - 1
    x[rows, :, 1] = 0.0
    x[rows, carrier, 0] = 4.0
    x[rows, carrier, 1] = 3 * sign
    x[rows, decoy, 1] = -3 * sign
    return x.half(), y  # fp16, as the cache stores tokens


def test_attentive_probe_reads_the_marked_token_where_average_pooling_cannot():
    x, y = one_token_task(2500)
    train, test = slice(0, 2000), slice(2000, None)
    pooled = linear_probe(x[train].float().mean(1), y[train], x[test].float().mean(1), y[test],
                          weight_decays=(1e-4,), max_iter=50)
    assert abs(pooled["accuracy"] - 0.5) < 0.06  # the task defeats average pooling
    r = attentive_probe(x[train], y[train], x[test], y[test], learning_rates=(3e-3, 1e-4),
                        weight_decays=(0.01,), epochs=8, batch_size=64)
    assert r["accuracy"] > 0.95, r
    assert r["learning_rate"] == 3e-3  # the held-out split picks the setting that learned
    assert set(r["val_accuracy_by_setting"]) == {"lr 0.003, wd 0.01", "lr 0.0001, wd 0.01"}


def test_settings_are_independent():
    """A setting's logits do not depend on the other settings' parameters."""
    model = BatchedPooler(3, 16, 5, queries=2, depth=2)
    tokens = torch.randn(4, 6, 16)
    before = model(tokens)
    with torch.no_grad():
        for p in model.parameters():
            p[1:] += torch.randn_like(p[1:])
    after = model(tokens)
    assert torch.equal(before[0], after[0]) and not torch.allclose(before[1], after[1])


def test_heads_are_clamped_for_narrow_tokens():
    assert attention_heads(1024) == 16 and attention_heads(128) == 16
    assert attention_heads(16) == 2 and attention_heads(49) == 1 and attention_heads(4) == 1
