"""SIGReg: the sliced Epps-Pulley test that LeJEPA minimises (Balestriero and LeCun,
"LeJEPA: Provable and Scalable Self-Supervised Learning Without the Heuristics",
arXiv 2511.08544, section 4 and algorithm 1).

Embeddings ``z`` [N, D] are projected on M random unit directions; for each 1-D
projection the empirical characteristic function ``phi_N(t) = mean_n exp(i t x_n)``
is compared with the standard normal's ``exp(-t^2/2)``:

    EP = N * integral |phi_N(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt

The integrand is even in t, so the integral over the real line is twice the one over
[0, t_max]; it is taken with the trapezoid rule on ``knots`` points. For a standard
normal sample the statistic stays of order one whatever N; for any other distribution
it grows linearly with N, which is what makes it a test (and, as a loss, keeps it from
fading on large batches). The value is averaged over directions.

Under DDP the characteristic-function sums and the sample count are all-reduced
with an autograd-aware collective, so every rank holds the statistic of the global
batch. Its backward is an all-reduce of the gradients: each rank's embeddings get
the gradient of the sum of every rank's (identical) loss, i.e. world-size times the
gradient of the global statistic, which DDP's averaging of parameter gradients turns
back into exactly the single-process gradient. A plain (non-autograd) all-reduce
would drop the other ranks' terms and leave the parameter gradient world-size times
too small: the bug two public implementations shipped with.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist


def random_directions(dim: int, num: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``num`` directions uniform on the unit sphere of R^dim, as the columns of a
    [dim, num] matrix. Drawn on the generator's device (CPU for a CPU generator), so
    the same seed gives the same directions on every rank and accelerator."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    a = torch.randn(dim, num, generator=generator, device=gen_device, dtype=torch.float32)
    a = a / a.norm(dim=0, keepdim=True)
    return a.to(device=device or gen_device, dtype=dtype)


def quadrature(knots: int, t_max: float, device: torch.device | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Knots ``t`` on [0, t_max], the target ``exp(-t^2/2)``, and the weights: the
    trapezoid rule doubled (the integrand is even) times the window ``exp(-t^2/2)``."""
    if knots < 2 or t_max <= 0:
        raise ValueError(f"need knots >= 2 and t_max > 0, got {knots}, {t_max}")
    t = torch.linspace(0.0, t_max, knots, device=device, dtype=torch.float32)
    gauss = torch.exp(-0.5 * t * t)
    dt = t_max / (knots - 1)
    weights = torch.full((knots,), 2 * dt, device=device, dtype=torch.float32)
    weights[0] = weights[-1] = dt
    return t, gauss, weights * gauss


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def epps_pulley(z: torch.Tensor, directions: torch.Tensor, knots: int = 17,
                t_max: float = 3.0, sync: bool = True) -> torch.Tensor:
    """The sliced Epps-Pulley statistic of ``z`` [N, D] over ``directions`` [D, M],
    averaged over directions; a scalar, computed in fp32 whatever the autocast.

    With ``sync`` and torch.distributed initialised (world size > 1) the statistic is
    that of the batch gathered from every rank: every rank must call it, with identical
    ``directions``. ``sync=False`` tests this rank's samples alone (e.g. in a monitor
    that runs on one rank)."""
    if z.ndim != 2 or directions.ndim != 2 or z.shape[1] != directions.shape[0]:
        raise ValueError(f"need z [N, D] and directions [D, M], got {list(z.shape)} "
                         f"and {list(directions.shape)}")
    off = torch.autocast(z.device.type, enabled=False) if z.device.type in ("cpu", "cuda") \
        else contextlib.nullcontext()  # the meta device (FLOP counting) has no autocast
    with off:
        t, gauss, weights = quadrature(knots, t_max, z.device)
        x = (z.float() @ directions.to(z.device, torch.float32)).unsqueeze(-1) * t  # [N, M, T]
        cos_sum, sin_sum = x.cos().sum(0), x.sin().sum(0)  # [M, T]
        count = torch.tensor([float(z.shape[0])], device=z.device)
        if sync and _distributed():
            from torch.distributed.nn.functional import all_reduce

            packed = torch.cat([cos_sum.reshape(-1), sin_sum.reshape(-1), count])
            packed = all_reduce(packed)  # SUM, differentiable
            m = cos_sum.numel()
            cos_sum, sin_sum = packed[:m].view_as(cos_sum), packed[m:2 * m].view_as(sin_sum)
            count = packed[2 * m:].detach()
        n = count[0]
        err = (cos_sum / n - gauss) ** 2 + (sin_sum / n) ** 2  # [M, T]
        return (n * (err @ weights)).mean()
