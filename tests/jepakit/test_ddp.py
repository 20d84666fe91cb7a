"""Multi-process training on CPU with gloo: DDP equals one process on the same global
batch; two simulated nodes rendezvous over c10d; torchrun restarts a dead rank."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import jepakit
from jepakit.registry import Registry

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "recipes/ijepa_tiny.yaml")
TINY_MODEL = [
    "encoder.params.embed_dim=32", "encoder.params.depth=1", "encoder.params.num_heads=2",
    "predictor.params.embed_dim=16", "predictor.params.depth=1", "predictor.params.num_heads=2",
    "train.batch_size=8", "data.params.num_samples=64", "logging.every_steps=1",
    "logging.progress=false", "monitors.probe_samples=0", "train.device=cpu", "train.steps=3",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_on_fixed_batches(world: int, rank: int) -> dict[str, torch.Tensor]:
    """Three steps on the same global batches; this rank takes its slice of each."""
    torch.set_num_threads(1)
    trainer = jepakit.build(TINY, TINY_MODEL, registry=Registry(), write_files=False)
    per_rank = 8 // world
    for step in range(3):
        g = torch.Generator().manual_seed(100 + step)
        images = torch.randn(8, 3, 32, 32, generator=g)
        masks = trainer.masks.masker(8, trainer.model.encoder.patch_grid, g)
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        batch = jepakit.data.Batch(images=images[rows], labels=None, masks=jepakit.Masks(
            context=[m[rows] for m in masks.context], targets=[m[rows] for m in masks.targets]))
        trainer.train_step(batch)
    return {f"encoder.{k}": v.clone() for k, v in trainer.model.encoder.state_dict().items()} | {
        f"target.{k}": v.clone() for k, v in trainer.model.target_encoder.state_dict().items()}


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    state = train_on_fixed_batches(world, rank)
    if rank == 0:
        torch.save(state, out)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    single = train_on_fixed_batches(world=1, rank=0)
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    assert ddp.keys() == single.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-5, rtol=1e-4, msg=key)
    start = jepakit.build(TINY, TINY_MODEL, registry=Registry(), write_files=False)
    moved = any(not torch.equal(start.model.encoder.state_dict()[k.split(".", 1)[1]], v)
                for k, v in single.items() if k.startswith("encoder."))
    assert moved, "training must have changed the weights for the comparison to mean anything"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    full_env.update(env or {})
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        full_env.pop(var, None)
    proc = subprocess.Popen([sys.executable, "-m", "jepakit.cli", "run", TINY, *TINY_MODEL, *args],
                            cwd=REPO, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc


def steps_logged(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


@pytest.mark.slow
def test_two_simulated_nodes_train_over_c10d(tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [cli("--nnodes", "2", "--node-rank", str(r), "--rdzv-endpoint", endpoint,
                 "--run-dir", str(tmp_path / "run")) for r in (0, 1)]
    errors = []
    for node in nodes:
        out, err = node.communicate(timeout=300)
        assert node.returncode == 0, err
        errors.append(err)
    assert "on 2 x cpu" in errors[0]  # rank 0 (node 0) reports the world size
    assert steps_logged(tmp_path / "run") == [1, 2, 3]


def test_multi_node_needs_a_shared_run_dir(tmp_path):
    proc = cli("--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--run-dir" in err and "Traceback" not in err


def test_global_batch_must_divide_by_world_size(tmp_path):
    proc = cli("--nproc-per-node", "3", "--run-dir", str(tmp_path / "run"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "train.batch_size=8 is the global batch and must divide by the world size 3" in err


CRASH_ONCE = '''
import os
from pathlib import Path

import jepakit


@jepakit.hookimpl
def jepakit_on_step_end(trainer, step, metrics):
    marker = Path(os.environ["CRASH_MARKER"])
    if step == 5 and trainer.env.rank == 1 and not marker.exists():
        marker.write_text("crashed")
        os._exit(17)
'''


@pytest.mark.slow
def test_torchrun_restarts_a_dead_rank_from_the_last_checkpoint(tmp_path):
    """A plugin kills rank 1 once at step 5; torchrun (--max-restarts 1) restarts the
    workers, which resume from the step-4 checkpoint and finish."""
    pkg = tmp_path / "site"
    (pkg / "crash_once").mkdir(parents=True)
    (pkg / "crash_once/__init__.py").write_text(CRASH_ONCE)
    info = pkg / "crash_once-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-once\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[jepakit]\ncrash_once = crash_once\n")
    env = {"PYTHONPATH": f"{pkg}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JEPAKIT_DISABLE_PLUGIN_AUTOLOAD": "0", "CRASH_MARKER": str(tmp_path / "crashed")}
    proc = cli("--nproc-per-node", "2", "--max-restarts", "1", "--run-dir", str(tmp_path / "run"),
               "train.steps=8", "checkpoint.every_steps=4", env=env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (tmp_path / "crashed").exists()
    assert "resumed from" in err and "step_00000004.pt" in err
    assert steps_logged(tmp_path / "run") == list(range(1, 9))
