"""The engine trains a ``vjepa`` recipe end to end: it passes the encoder's ``num_frames``
to the dataset, clips go through the loader, checkpoints hold the method's modules and a
resumed run continues from them (test-local clip dataset and zip masker)."""

from __future__ import annotations

import json

import attrs
import torch
from vjepa_helpers import TinyConfig, TinyZipMasker

import jepakit
from jepakit.registry import Registry

SEEN: dict[str, int] = {}


@attrs.define
class ClipsConfig:
    num_samples: int = 32


class TinyClips(torch.utils.data.Dataset):
    """Moving bars: clips [C, num_frames, H, W] with a class label."""

    def __init__(self, config: ClipsConfig, *, image_size: int, in_chans: int, seed: int,
                 num_frames: int) -> None:
        SEEN["num_frames"] = num_frames
        self.n, self.size, self.chans, self.frames = config.num_samples, image_size, in_chans, num_frames

    def __len__(self) -> int:
        return self.n

    def held_out(self, n: int) -> list:
        """Clips past the training indices, for the end-of-run probe."""
        return [self[self.n + i] for i in range(n)]

    def __getitem__(self, i: int):
        clip = torch.zeros(self.chans, self.frames, self.size, self.size)
        for t in range(self.frames):
            col = (i + t * (1 + i % 3)) % self.size
            clip[:, t, :, col] = 3.0
        return clip, i % 3


class _Plugin:
    @jepakit.hookimpl
    def jepakit_datasets(self):
        return [jepakit.Component("tiny_clips", TinyClips, ClipsConfig)]

    @jepakit.hookimpl
    def jepakit_maskers(self):
        return [jepakit.Component("tiny_zip", TinyZipMasker, TinyConfig)]


RECIPE = {
    "name": "vjepa-engine-test",
    "method": {"name": "vjepa"},
    "encoder": {"name": "vit_video", "params": {"size": "tiny", "image_size": 16, "patch_size": 4,
                                                "num_frames": 4, "embed_dim": 32, "depth": 1,
                                                "num_heads": 2}},
    "masker": {"name": "tiny_zip", "params": {"sizes": [4, 12]}},
    "predictor": {"name": "vjepa", "params": {"embed_dim": 16, "depth": 1, "num_heads": 2}},
    "target_updater": {"name": "ema", "params": {"start": 0.99, "end": 0.99}},
    "loss": {"name": "l1"},
    "data": {"name": "tiny_clips"},
    "train": {"steps": 4, "batch_size": 8, "device": "cpu", "num_workers": 0},
    "checkpoint": {"every_steps": 2, "keep_last": 2},
    "logging": {"every_steps": 1, "progress": False},
    "monitors": {"probe_samples": 0},
}


def test_the_engine_trains_and_resumes_a_video_recipe(tmp_path):
    registry = Registry(plugins=[_Plugin()])
    run = tmp_path / "run"
    trainer = jepakit.build(RECIPE, ["train.steps=2"], run_dir=run, registry=registry)
    assert SEEN["num_frames"] == 4
    trainer.fit()
    first = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [1, 2] and all(r["loss"] > 0 for r in first)
    resumed = jepakit.build(RECIPE, [], run_dir=run, registry=registry, resume="auto")
    assert resumed.step == 2
    torch.testing.assert_close(resumed.model.predictor.mask_tokens[1],
                               trainer.model.predictor.mask_tokens[1])
    resumed.fit()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]


def test_the_end_of_run_probe_encodes_clips_of_the_encoders_length(tmp_path):
    registry = Registry(plugins=[_Plugin()])
    trainer = jepakit.build(RECIPE, ["train.steps=1", "monitors.probe_samples=24",
                                     "checkpoint.every_steps=0"],
                            run_dir=tmp_path / "run", registry=registry)
    SEEN.clear()
    summary = trainer.fit()
    assert SEEN["num_frames"] == 4  # the probe's dataset was asked for 4-frame clips too
    assert 0.0 <= summary["probe_accuracy"] <= 1.0
