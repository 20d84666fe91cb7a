"""torch.distributed plumbing: where this process sits (torchrun or SLURM), the
process group, rank-0 helpers, and handing ``jepakit run`` to torch.distributed.run.

jepakit never spawns workers itself: torchrun (or srun) does, and every process
runs the same ``jepakit run``.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence

import attrs
import torch
import torch.distributed as dist

from jepakit.errors import ConfigError


@attrs.define(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM nodelist such as ``gpu[003-005,010],cpu01`` -> ``gpu003``."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not m:
        return nodelist
    prefix, ranges = m.group(1), m.group(2)
    if not ranges:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first


def detect(environ: dict[str, str] | None = None) -> DistEnv:
    """Read rank and world size from torchrun's variables, else from SLURM's (``srun``)."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        rank, world = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local = int(env.get("SLURM_LOCALID", 0))
        # init_process_group's env:// reads these; derive them from SLURM's if unset.
        if environ is None:
            os.environ.setdefault("MASTER_ADDR", first_slurm_host(env.get("SLURM_NODELIST", "127.0.0.1")))
            os.environ.setdefault("MASTER_PORT", "29500")
            os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local))
        return DistEnv(rank, local, world)
    return DistEnv()


def init(env: DistEnv, device: torch.device) -> None:
    """Join the process group: nccl on CUDA, gloo on CPU."""
    if not env.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(env.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if restart is not None and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # After torchrun restarts the workers, the agent's store still holds the dead
        # workers' gloo addresses under the same keys; a per-restart prefix keeps the
        # new group from dialling them.
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                              is_master=False, timeout=datetime.timedelta(minutes=10))
        dist.init_process_group(backend, store=dist.PrefixStore(f"jepakit/restart{restart}", store),
                                rank=env.rank, world_size=env.world_size)
    else:
        dist.init_process_group(backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(env: DistEnv, device: torch.device) -> torch.device:
    """One GPU per process: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", env.local_rank)
    return device


def per_rank_batch(global_batch: int, env: DistEnv) -> int:
    if global_batch % env.world_size:
        raise ConfigError(
            f"train.batch_size={global_batch} is the global batch and must divide by the "
            f"world size {env.world_size}"
        )
    return global_batch // env.world_size


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized() and dist.get_world_size() > 1:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= dist.get_world_size()
    return value


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def torchrun_argv(
    run_args: Sequence[str], nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
    rdzv_endpoint: str | None = None, max_restarts: int = 0,
) -> list[str]:
    """Arguments for ``torch.distributed.run`` that start ``jepakit run`` on every process."""
    argv = [f"--nproc-per-node={nproc_per_node}", f"--max-restarts={max_restarts}"]
    if nnodes == 1 and rdzv_endpoint is None:
        argv.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ConfigError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
        argv += [f"--nnodes={nnodes}", f"--node-rank={node_rank}", "--rdzv-backend=c10d",
                 f"--rdzv-endpoint={rdzv_endpoint}"]
    return [*argv, "-m", "jepakit.cli", "run", *run_args]


def launch(argv: Sequence[str]) -> int:
    """Hand over to torch.distributed.run (torchrun) in this process."""
    from torch.distributed import run as torchrun

    torchrun.main(list(argv))
    return 0
