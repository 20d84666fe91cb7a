"""SIGReg under DDP: two gloo processes with half the batch each give the statistic of
the whole batch, and after DDP's gradient averaging the same gradients as one process."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from jepakit_lejepa.losses import SIGRegConfig, SIGRegLoss, step_generator
from jepakit_lejepa.sigreg import epps_pulley, random_directions
from torch import nn

BATCH, DIM, OUT = 16, 8, 6
CONFIG = SIGRegConfig(num_directions=64)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inputs() -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    """A fixed non-normal batch of embeddings, a second one of features, and a linear head."""
    g = torch.Generator().manual_seed(7)
    z = torch.randn(BATCH, DIM, generator=g) * 1.7 + 0.3
    x = torch.randn(BATCH, DIM, generator=g)
    torch.manual_seed(0)
    return z, x, nn.Linear(DIM, OUT)


def sigreg_and_grads(rows: slice, wrap=lambda m: m) -> dict[str, torch.Tensor]:
    """The loss on ``rows`` of the batch, its gradient w.r.t. those embeddings, and the
    (DDP-averaged, when wrapped) gradients of a linear head producing a second view."""
    z, x, head = inputs()
    loss = SIGRegLoss(CONFIG)
    z = z[rows].clone().requires_grad_()
    value = loss([z], step=3, seed=11)
    value.backward()
    model = wrap(head)
    head_value = loss([model(x[rows])], step=3, seed=11)
    head_value.backward()
    local = epps_pulley(z.detach(), random_directions(DIM, 64, step_generator(11, 3)), sync=False)
    return {"value": value.detach(), "z_grad": z.grad, "head_value": head_value.detach(),
            "weight_grad": head.weight.grad, "bias_grad": head.bias.grad, "local": local}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        per = BATCH // world
        result = sigreg_and_grads(slice(rank * per, (rank + 1) * per),
                                  wrap=nn.parallel.DistributedDataParallel)
        torch.save(result, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_the_whole_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    single = sigreg_and_grads(slice(None))
    out = str(tmp_path / "rank")
    mp.spawn(_worker, args=(2, free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    for rank, got in enumerate(ranks):
        # sync=False: this rank's half alone
        local = sigreg_and_grads(slice(rank * 8, (rank + 1) * 8))["local"]
        torch.testing.assert_close(got["local"], local, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(got["local"], single["value"], rtol=1e-2)
        # the statistic of the global batch (N = 16), on every rank
        torch.testing.assert_close(got["value"], single["value"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got["head_value"], single["head_value"], atol=1e-5, rtol=1e-5)
        # each rank's embeddings get world x their gradient of the global statistic (the
        # gradient of the sum of both ranks' losses), which DDP's 1/world averaging of
        # parameter gradients turns into the single-process gradient:
        rows = slice(rank * 8, (rank + 1) * 8)
        torch.testing.assert_close(got["z_grad"] / 2, single["z_grad"][rows], atol=1e-5, rtol=1e-5)
        # ... as the DDP-wrapped head shows directly
        torch.testing.assert_close(got["weight_grad"], single["weight_grad"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got["bias_grad"], single["bias_grad"], atol=1e-5, rtol=1e-5)
    assert single["z_grad"].abs().max() > 1e-3  # a real gradient, not 0 == 0
