"""Evaluation data for a video encoder: clips cut by the run's own dataset plugin.

A video encoder (one with ``num_frames``) is evaluated on labelled video shards, one
encoded video per sample with a ``cls`` label, as ``jepakit shards make --format
videofolder`` writes them. Cutting a clip (how many frames, at what step or frame
rate, which decoder) is the business of the dataset plugin the run trained with, so
evaluation asks that plugin for its decoder, in its deterministic evaluation mode
(``evaluation: true``: one evenly placed clip per video, the centred square of each
frame, no flip), and reads the shards with it. The engine names no plugin: any dataset
plugin whose dataset exposes the stream decoder (``decode``) and takes ``evaluation``
serves. Clip length, step and normalisation are the run's, so features match training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import torch

from jepakit.errors import ConfigError, JepakitError

SampleDecoder = Callable[[dict[str, Any]], tuple[torch.Tensor, int]]
"""Raw shard sample -> (clip [C, T, H, W], label); raises SampleError for a bad one."""

NOT_YOURS = ("urls", "index", "evaluation", "shuffle_buffer", "clips_per_video")
"""Recipe data params evaluation sets itself (the training shards and their shuffling
say nothing about the evaluation data)."""


@attrs.frozen
class ClipDecoding:
    """How to cut evaluation clips: the recipe's dataset plugin and what it is built with."""

    dataset: str
    params: dict[str, Any]
    image_size: int
    in_chans: int
    num_frames: int
    seed: int = 0
    clips_per_video: int = 1
    """Clips spread evenly over each video; a sample is then [K, C, T, H, W] and its
    features the average of its clips' (``jepakit eval --clips-per-video``)."""

    @classmethod
    def of(cls, recipe: Any, encoder: Any) -> ClipDecoding | None:
        """For ``encoder`` if it is a video encoder (``num_frames``), else None."""
        frames = getattr(encoder, "num_frames", None)
        if frames is None:
            return None
        data = recipe.spec("dataset")
        params = {k: v for k, v in dict(data.params).items() if k not in NOT_YOURS}
        return cls(data.name, params, int(encoder.image_size[0]), int(encoder.in_chans),
                   int(frames), int(recipe.train.seed))

    def key(self) -> str:
        """What the features depend on (for the cache key)."""
        return json.dumps([self.dataset, self.params, self.num_frames, self.clips_per_video],
                          sort_keys=True, default=str)

    def describe(self) -> str:
        many = f"{self.clips_per_video} " if self.clips_per_video > 1 else ""
        return f"{many}{self.num_frames}-frame clips cut by the '{self.dataset}' dataset plugin"

    def decoder(self, data: Any, registry: Any = None) -> SampleDecoder:
        """The plugin's evaluation-mode decoder for the shards of ``data`` (a
        :class:`jepakit.eval.data.LabelledSource`)."""
        from jepakit.registry import default_registry

        if data.kind != "shards":
            raise JepakitError(f"{data.describe()}: clips are read from video shards")
        params = {**self.params, "urls": list(data.units), "evaluation": True,
                  "shuffle_buffer": 0,
                  **({"clips_per_video": self.clips_per_video} if self.clips_per_video > 1
                     else {})}
        try:
            dataset = (registry or default_registry()).create(
                "dataset", self.dataset, params, path="data.params", image_size=self.image_size,
                in_chans=self.in_chans, seed=self.seed, num_frames=self.num_frames)
        except ConfigError as exc:
            raise JepakitError(f"evaluating a video encoder cuts clips with the run's dataset "
                               f"plugin '{self.dataset}', which does not read shards in "
                               f"evaluation mode ({exc})") from None
        decode = getattr(dataset, "decode", None)
        if not callable(decode):
            raise JepakitError(f"evaluating a video encoder cuts clips with the run's dataset "
                               f"plugin '{self.dataset}', but it does not read shards (it has "
                               "no stream decoder); a run trained on video shards can be "
                               "evaluated on video shards")
        return decode  # type: ignore[no-any-return]


def with_clips_per_video(source: Any, clips: int) -> Any:
    """``source`` (a :class:`jepakit.eval.features.FeatureSource`) reading ``clips`` clips
    of each video; a user error unless it is a video encoder (or its pixels)."""
    if clips == 1:
        return source
    if clips < 1:
        raise JepakitError(f"--clips-per-video must be >= 1, got {clips}")
    if source.clips is None:
        raise JepakitError(f"--clips-per-video {clips}: {source.description} reads images, "
                           "not clips (it is for a video encoder's run)")
    return attrs.evolve(source, clips=attrs.evolve(source.clips, clips_per_video=clips))
