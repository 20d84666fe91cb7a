"""Training from shards: bad-sample counts reach metrics.jsonl, the summary and the log,
and too many bad samples stop the run with a clear message."""

from __future__ import annotations

import json

import pytest
from shardkit import image_folder

from jepakit.data.shards import make_shards
from jepakit.engine import build
from jepakit.errors import JepakitError

SMALL = [
    "encoder.params.image_size=16", "encoder.params.embed_dim=32", "encoder.params.depth=1",
    "encoder.params.num_heads=2", "predictor.params.embed_dim=16", "predictor.params.depth=1",
    "predictor.params.num_heads=2", "train.batch_size=4", "train.num_workers=0",
    "checkpoint.enabled=false", "logging.every_steps=1", "logging.progress=false", "monitors.probe_samples=0",
    "data.name=webdataset",
]


@pytest.fixture()
def broken_shards(tmp_path):
    """3 shards of 8 images; shard 1 is cut short, losing its last samples."""
    image_folder(tmp_path / "src", per_class=8)
    make_shards(tmp_path / "src", tmp_path / "out", shard_size=8, progress=False)
    shard = tmp_path / "out" / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:4096])
    return tmp_path / "out" / "index.json"


def train(tiny_recipe, run_dir, urls, *extra):
    params = "{urls: " + str(urls) + ", shuffle_buffer: 4, " + ", ".join(extra) + "}"
    trainer = build(tiny_recipe, [*SMALL, f"data.params={params}", "train.steps=4"],
                    run_dir=run_dir)
    return trainer.fit()


def test_skipped_samples_reach_metrics_summary_and_log(tiny_recipe, tmp_path, broken_shards):
    summary = train(tiny_recipe, tmp_path / "run", broken_shards, "max_bad_fraction: 0.9")
    assert summary["bad_samples"] > 0 and summary["samples_read"] >= 16
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert records[-1]["bad_samples"] == summary["bad_samples"]
    log = (tmp_path / "run" / "run.log").read_text()
    assert "bad sample skipped: source" in log and "shard-000001.tar" in log
    assert "truncated" in log


def test_bad_fraction_threshold_stops_the_run(tiny_recipe, tmp_path, broken_shards):
    with pytest.raises(JepakitError, match=r"stopping: \d+ of \d+ samples read were bad"):
        train(tiny_recipe, tmp_path / "run", broken_shards, "max_bad_fraction: 0.05",
              "bad_check_after: 8")
