"""Where a process sits: torchrun and SLURM variables, batch splitting, torchrun argv."""

from __future__ import annotations

import pytest

from jepakit.distributed import DistEnv, detect, first_slurm_host, per_rank_batch, torchrun_argv
from jepakit.errors import ConfigError


def test_detect_defaults_to_one_process():
    assert detect({}) == DistEnv(0, 0, 1)
    assert not detect({}).distributed


def test_detect_reads_torchrun_variables():
    env = detect({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (env.rank, env.local_rank, env.world_size) == (3, 1, 4)
    assert env.distributed and not env.is_main


def test_detect_reads_slurm_variables():
    env = detect({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
                  "SLURM_NODELIST": "gpu[01-02]"})
    assert (env.rank, env.local_rank, env.world_size) == (5, 1, 8)


def test_single_slurm_task_is_not_distributed():
    assert detect({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == DistEnv()


@pytest.mark.parametrize(("nodelist", "first"), [
    ("gpu[003-005,010],cpu01", "gpu003"), ("node7", "node7"), ("a[1,3]", "a1"), ("x-[09-12]", "x-09"),
])
def test_first_slurm_host(nodelist, first):
    assert first_slurm_host(nodelist) == first


def test_global_batch_splits_evenly_or_fails_clearly():
    assert per_rank_batch(64, DistEnv(0, 0, 4)) == 16
    with pytest.raises(ConfigError, match="train.batch_size=30.*world size 4"):
        per_rank_batch(30, DistEnv(0, 0, 4))


def test_torchrun_argv_single_node_is_standalone():
    argv = torchrun_argv(["r.yaml", "train.steps=3"], nproc_per_node=2)
    assert "--standalone" in argv and "--nproc-per-node=2" in argv
    assert argv[-5:] == ["-m", "jepakit.cli", "run", "r.yaml", "train.steps=3"]


def test_torchrun_argv_multi_node_uses_c10d_rendezvous():
    argv = torchrun_argv(["r.yaml"], 1, nnodes=2, node_rank=1, rdzv_endpoint="127.0.0.1:29400")
    assert {"--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d",
            "--rdzv-endpoint=127.0.0.1:29400"} <= set(argv)
    with pytest.raises(ConfigError, match="rdzv-endpoint"):
        torchrun_argv(["r.yaml"], 1, nnodes=2)
