"""SIGReg (sliced Epps-Pulley): the formula, its behaviour as a normality test, fp32."""

from __future__ import annotations

import cmath
import math

import pytest
import torch
from jepakit_lejepa.sigreg import epps_pulley, random_directions


def reference_statistic(z: torch.Tensor, directions: torch.Tensor, knots: int,
                        t_max: float) -> float:
    """The paper's statistic written out with loops: N * integral over [-t_max, t_max] of
    |mean_n exp(i t x_n) - exp(-t^2/2)|^2 exp(-t^2/2) dt, by the plain trapezoid rule on
    the symmetric grid of 2 * knots - 1 points, averaged over directions."""
    n, dim = z.shape
    h = t_max / (knots - 1)
    grid = [-t_max + i * h for i in range(2 * knots - 1)]
    total = 0.0
    for m in range(directions.shape[1]):
        xs = [sum(float(z[i, d]) * float(directions[d, m]) for d in range(dim)) for i in range(n)]
        integral = 0.0
        for k, t in enumerate(grid):
            ecf = sum(cmath.exp(1j * t * x) for x in xs) / n
            value = abs(ecf - math.exp(-t * t / 2)) ** 2 * math.exp(-t * t / 2)
            integral += value * (h / 2 if k in (0, len(grid) - 1) else h)
        total += n * integral
    return total / directions.shape[1]


def gaussian(n: int, dim: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def directions(dim: int = 32, num: int = 256, seed: int = 1) -> torch.Tensor:
    return random_directions(dim, num, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("knots", "t_max"), [(17, 3.0), (5, 2.0)])
def test_matches_a_direct_restatement_of_the_formula(knots, t_max):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(12, 5, generator=g) * 1.3 + 0.2
    a = random_directions(5, 3, g)
    got = float(epps_pulley(z, a, knots, t_max))
    assert got == pytest.approx(reference_statistic(z, a, knots, t_max), rel=1e-5)
    assert got > 0.1  # a non-normal sample, so the comparison is not 0 == 0


def test_directions_are_unit_columns_and_follow_the_generator():
    a = directions(16, 40, seed=5)
    assert a.shape == (16, 40) and a.dtype == torch.float32
    torch.testing.assert_close(a.norm(dim=0), torch.ones(40))
    assert torch.equal(a, directions(16, 40, seed=5))
    assert not torch.equal(a, directions(16, 40, seed=6))
    assert random_directions(4, 2, torch.Generator().manual_seed(0),
                             dtype=torch.float64).dtype == torch.float64


def test_standard_normal_samples_score_near_the_null_expectation():
    """For N(0, I), E[N |ecf - exp(-t^2/2)|^2] = 1 - exp(-t^2) at every t, so the
    statistic stays near the integral of (1 - e^{-t^2}) e^{-t^2/2} (about 1.06), however
    large N is: per sample (value / N) it vanishes."""
    t = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    null = float(torch.trapezoid((1 - torch.exp(-t * t)) * torch.exp(-t * t / 2), t))
    a = directions()
    small, large = float(epps_pulley(gaussian(512), a)), float(epps_pulley(gaussian(8192), a))
    assert small == pytest.approx(null, rel=0.3)
    assert large == pytest.approx(null, rel=0.3)
    assert large / 8192 < 2e-4


@pytest.mark.parametrize("distort", [
    lambda z: torch.zeros_like(z),  # collapsed to a point
    lambda z: z[:1].expand_as(z).clone(),  # collapsed to one sample
    lambda z: z + 1.0,  # shifted mean
    lambda z: z * torch.linspace(0.1, 1.0, z.shape[1]),  # anisotropic
    # a scale mixture of Gaussians with unit variance: every projection has heavy tails
    # (coordinate-wise non-Gaussian data such as z.sign() would not do: its projections
    # are Gaussian by the central limit theorem, which no sliced test can see)
    lambda z: z * torch.tensor([0.3, (2 - 0.3**2) ** 0.5]).repeat(z.shape[0] // 2)[:, None],
])
def test_collapsed_shifted_or_non_gaussian_samples_score_large(distort):
    a, z = directions(), gaussian(2048)
    normal = float(epps_pulley(z, a))
    assert float(epps_pulley(distort(z), a)) > 20 * normal


def test_collapse_grows_with_the_batch_while_normal_does_not():
    a = directions()
    collapsed = [float(epps_pulley(torch.zeros(n, 32), a)) for n in (256, 1024)]
    assert collapsed[1] == pytest.approx(4 * collapsed[0], rel=1e-4)


@pytest.mark.parametrize("scales", [(1.0, 1.2, 1.5, 2.0, 3.0), (1.0, 0.8, 0.6, 0.4, 0.2)])
def test_monotone_as_a_gaussian_is_scaled_away_from_unit_variance(scales):
    a, z = directions(), gaussian(4096)
    values = [float(epps_pulley(z * s, a)) for s in scales]
    assert values == sorted(values) and values[1] > 5 * values[0]


def test_gradient_pulls_towards_the_standard_normal():
    a = directions()
    z = (gaussian(1024) * 2).requires_grad_()
    before = epps_pulley(z, a)
    before.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    with torch.no_grad():
        stepped = z - 0.5 * z.grad / z.grad.norm() * z.norm()
    assert float(epps_pulley(stepped, a)) < before.item()


def test_computed_in_fp32_under_low_precision():
    a = directions()
    z = gaussian(256).bfloat16()
    value = epps_pulley(z, a.bfloat16())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, epps_pulley(z.float(), a.bfloat16().float()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = epps_pulley(z.float(), a)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, epps_pulley(z.float(), a))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"z \[N, D\]"):
        epps_pulley(torch.zeros(4, 8), directions(6, 3))
