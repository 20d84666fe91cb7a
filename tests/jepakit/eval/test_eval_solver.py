"""The probe's solver against scikit-learn on small problems, for d < n (whitened primal)
and d > n (the span of the samples), and the d > n path's memory: no d x d matrix."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jepakit.eval.probe import fit_linear, linear_probe
from jepakit.eval.solver import Span, column_stats

sklearn_linear = pytest.importorskip("sklearn.linear_model")


def problem(n: int, d: int, classes: int = 3, seed: int = 0):
    """Correlated features with a linear signal plus label noise (not separable, so the
    optimum is unique and finite)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) @ (torch.eye(d) + 0.3 * torch.randn(d, d, generator=g)
                                          / d ** 0.5)
    x = x * torch.logspace(0, 1, d) + 3  # unequal scales and a shift: standardised inside
    w = torch.randn(d, classes, generator=g)
    y = (x @ w / d ** 0.5 + 2 * torch.randn(n, classes, generator=g)).argmax(1)
    return x, y


def sklearn_fit(x: torch.Tensor, y: torch.Tensor, weight_decay: float):
    """The same objective: mean cross-entropy + wd/2 |W|^2 on standardised x is
    sum cross-entropy + 1/2 |W|^2 with C = 1 / (n wd), intercept unpenalised."""
    mean, std = column_stats(x)
    z = ((x - mean) / std).double().numpy()
    clf = sklearn_linear.LogisticRegression(C=1.0 / (len(x) * weight_decay), tol=1e-10,
                                            max_iter=5000)
    clf.fit(z, y.numpy())
    return clf, z


@pytest.mark.parametrize("n,d", [(400, 20), (60, 300)], ids=["d<n", "d>n"])
@pytest.mark.parametrize("weight_decay", [1e-2, 1e-3])
def test_fit_matches_scikit_learn(n, d, weight_decay):
    x, y = problem(n, d)
    ours = fit_linear(x, y, 3, weight_decay, max_iter=500)
    ref, z = sklearn_fit(x, y, weight_decay)
    ref_p = torch.from_numpy(ref.predict_proba(z)).float()
    our_p = torch.softmax(ours.logits(x), 1)
    assert (our_p - ref_p).abs().max() < 2e-3
    # softmax weights are defined up to a per-feature shift shared by the classes;
    # the penalty fixes it at zero mean, in both
    coef = torch.from_numpy(ref.coef_.T).float()
    assert torch.allclose(ours.weight, coef, atol=2e-3 * float(coef.abs().max()))
    assert torch.equal(ours.predict(x), torch.from_numpy(ref.predict(z)))


@pytest.mark.parametrize("n,d", [(300, 20), (80, 400)], ids=["d<n", "d>n"])
def test_probe_test_accuracy_matches_scikit_learn(n, d):
    x, y = problem(n + 200, d, seed=3)
    r = linear_probe(x[:n], y[:n], x[n:], y[n:], weight_decays=(1e-2,), max_iter=500)
    ref, _ = sklearn_fit(x[:n], y[:n], 1e-2)
    mean, std = column_stats(x[:n])
    ref_acc = ref.score(((x[n:] - mean) / std).double().numpy(), y[n:].numpy())
    assert r["accuracy"] == pytest.approx(ref_acc, abs=1 / 200)
    assert r["solver"].startswith("span" if d > n else "whitened")


def test_span_reproduces_inner_products():
    x, _ = problem(50, 200)
    other = problem(7, 200, seed=1)[0]
    span, (other_r,) = Span.fit(x, (other,))
    z = (x - span.mean) / span.std
    zo = (other - span.mean) / span.std
    assert span.rank == 49  # centred: one direction of the samples is lost
    torch.testing.assert_close(span.train @ span.train.T, z @ z.T, atol=1e-2, rtol=1e-4)
    torch.testing.assert_close(other_r @ span.train.T, zo @ z.T, atol=1e-2, rtol=1e-4)


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest: tuple[int, ...] = ()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.numel() > _numel(self.largest):
                self.largest = tuple(t.shape)
        return out


def _numel(shape: tuple[int, ...]) -> int:
    return int(torch.Size(shape).numel()) if shape else 0


def test_wide_features_build_no_d_by_d_matrix():
    """d = 6,000 > n = 120: the largest tensor the whole probe makes is the size of the
    features (a d x d matrix would be 36 M elements; the data itself is 0.96 M)."""
    n, d = 120, 6000
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (n + 40,), generator=g)
    x = torch.randn(n + 40, d, generator=g) + torch.randn(3, d, generator=g)[y]
    with LargestTensor() as watch:
        r = linear_probe(x[:n], y[:n], x[n:], y[n:], weight_decays=(1e-3, 1e-2), max_iter=20)
    assert r["solver"].startswith("span")
    assert r["classifier"].weight.shape == (d, 3)
    assert _numel(watch.largest) <= (n + 40) * d, watch.largest
    assert d * d > 30 * (n + 40) * d  # the bound above would catch a d x d matrix


def test_narrow_features_take_the_primal_path():
    x, y = problem(200, 10)
    with LargestTensor() as watch:
        r = linear_probe(x[:150], y[:150], x[150:], y[150:], weight_decays=(1e-3,), max_iter=20)
    assert r["solver"] == "whitened primal"
    assert _numel(watch.largest) <= 200 * 10
