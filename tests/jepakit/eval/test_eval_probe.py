"""Linear probe, k-NN and RankMe on features whose answer is known."""

from __future__ import annotations

import pytest
import torch

from jepakit.eval.knn import knn_accuracy, knn_predict
from jepakit.eval.probe import WEIGHT_DECAYS, few_shot, fit_linear, linear_probe, split_indices
from jepakit.eval.rank import rankme


def separable(n: int, dim: int = 16, classes: int = 4, seed: int = 0):
    """Gaussian blobs around well-separated class means."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) * 4
    y = torch.randint(classes, (n,), generator=g)
    return means[y] + torch.randn(n, dim, generator=g), y


def test_probe_separates_separable_features():
    x, y = separable(1500)  # 1,300 train: 130 held out, enough to sweep (MIN_VALIDATION)
    r = linear_probe(x[:1300], y[:1300], x[1300:], y[1300:], max_iter=50)
    assert r["accuracy"] > 0.97
    assert set(r["val_accuracy_by_weight_decay"]) == {f"{wd:g}" for wd in WEIGHT_DECAYS}


def test_probe_is_at_chance_on_noise():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 32, generator=g)
    y = torch.randint(10, (3000,), generator=g)
    r = linear_probe(x[:2000], y[:2000], x[2000:], y[2000:], max_iter=50)
    assert abs(r["accuracy"] - 0.1) < 0.04


def test_fit_is_invariant_to_feature_scale():
    x, y = separable(400)
    a = fit_linear(x, y, 4, 1e-3, 30)
    b = fit_linear(x * 1000 + 5, y, 4, 1e-3, 30)  # standardised inside
    assert torch.equal(a.predict(x), b.predict(x * 1000 + 5))


def test_split_and_few_shot_are_stratified():
    y = torch.arange(10).repeat_interleave(50)
    keep, held = split_indices(y, 0.2)
    assert len(set(keep.tolist()) & set(held.tolist())) == 0
    assert torch.bincount(y[held]).tolist() == [10] * 10
    idx = few_shot(y, 3)
    assert torch.bincount(y[idx]).tolist() == [3] * 10
    assert torch.equal(idx, few_shot(y, 3))  # seeded


def test_low_shot_probe_without_validation_still_fits():
    x, y = separable(400)
    idx = few_shot(y[:300], 1)
    r = linear_probe(x[idx], y[idx], x[300:], y[300:], max_iter=30)
    assert r["val_accuracy_by_weight_decay"] == {}  # too few to validate: no sweep
    assert r["accuracy"] > 0.8


@pytest.mark.parametrize("rank", [1, 3, 10])
def test_rankme_of_known_rank(rank):
    q, _ = torch.linalg.qr(torch.randn(200, rank, generator=torch.Generator().manual_seed(0)))
    r, _ = torch.linalg.qr(torch.randn(32, rank, generator=torch.Generator().manual_seed(1)))
    z = q @ r.T * 5  # 200 x 32, rank `rank`, equal singular values
    assert rankme(z) == pytest.approx(rank, rel=1e-3)


def test_rankme_collapse_and_full_rank():
    g = torch.Generator().manual_seed(0)
    assert rankme(torch.ones(100, 16)) == pytest.approx(1.0, rel=1e-3)
    assert rankme(torch.randn(2000, 16, generator=g)) > 15
    assert rankme(torch.zeros(5, 4)) == 0.0
    with pytest.raises(ValueError):
        rankme(torch.zeros(3))


def test_knn_on_a_toy_set():
    train_x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    train_y = torch.tensor([0, 0, 1, 1])
    query = torch.tensor([[0.8, 0.2], [0.2, 0.8], [5.0, 0.1]])  # cosine: scale does not matter
    assert knn_predict(train_x, train_y, query, k=3).tolist() == [0, 1, 0]
    x, y = separable(600)
    assert knn_accuracy(x[:500], y[:500], x[500:], y[500:], k=5) > 0.95
    assert knn_predict(train_x, train_y, query, k=100, chunk=1).tolist() == [0, 1, 0]

def test_whitener_decorrelates_and_inverts():
    import torch

    from jepakit.eval.probe import whitener

    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 6, generator=g) @ torch.randn(6, 6, generator=g)
    p, p_inv = whitener(z)
    zw = z @ p
    assert torch.allclose(zw.T @ zw / len(zw), torch.eye(6), atol=1e-3)
    assert torch.allclose(p @ p_inv, torch.eye(6), atol=1e-4)


def test_ill_conditioned_features_are_fitted_in_few_iterations():
    """Correlated features (condition number ~1e4) that are linearly separable:
    preconditioned L-BFGS gets there in 30 iterations (unpreconditioned: about 0.73)."""
    import torch

    from jepakit.eval.probe import fit_linear

    g = torch.Generator().manual_seed(1)
    latent = torch.randn(3000, 8, generator=g)
    y = latent[:, :3].argmax(1)
    mix = torch.linalg.qr(torch.randn(8, 8, generator=g))[0] @ torch.diag(
        torch.logspace(0, -4, 8)) @ torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    x = latent @ mix
    clf = fit_linear(x, y, 3, weight_decay=0.0, max_iter=30)
    assert clf.accuracy(x, y) > 0.97


def test_low_shot_sweeps_only_with_enough_held_out_images():
    """10 shots of 10 classes hold out 10 images: too few to pick a penalty (the middle
    of the grid is used); 13 shots of 100 classes (as 1% ImageNet) hold out 100: swept."""
    from jepakit.eval.probe import MIN_VALIDATION
    from jepakit.eval.protocols import summary_line

    g = torch.Generator().manual_seed(0)
    for classes, shots, swept in ((10, 10, False), (100, 13, True)):
        y = torch.arange(classes).repeat_interleave(shots)
        x = torch.randn(len(y), 8, generator=g) + torch.randn(classes, 8, generator=g)[y] * 3
        r = linear_probe(x, y, x, y, max_iter=5)
        assert bool(r["val_accuracy_by_weight_decay"]) == swept
        assert swept or r["weight_decay"] == 1e-3
        assert r["weight_decay_chosen_by"] == ("sweep" if swept else "low-shot rule")
        line = summary_line({"protocol": "linear", **r, "test_samples": len(y), "shots": shots,
                             "train_samples": len(y), "feature_dim": 8, "layers": "last",
                             "source": "s"})
        assert ("(fixed: too few held-out images to sweep)" in line) != swept
    assert MIN_VALIDATION == 100


def test_sample_rankme_of_wide_features_matches_the_direct_one():
    """Wider than tall (raw 224 px pixels): RankMe through the Gram matrix, no d x d work."""
    from jepakit.eval.protocols import sample_rankme

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 20, generator=g) @ torch.randn(20, 900, generator=g)
    idx = torch.arange(0, 300, 2)
    z = x[idx].double()
    assert sample_rankme(x, idx) == pytest.approx(rankme(z - z.mean(0)), rel=1e-6)
    assert sample_rankme(x[:, :100], idx) == pytest.approx(
        rankme(z[:, :100] - z[:, :100].mean(0)), rel=1e-9)
