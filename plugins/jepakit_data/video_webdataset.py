"""Stream video clips from WebDataset tar shards: one encoded video per sample.

A sample holds a video under any extension the decoder reads (mp4, webm, mkv, avi,
mov, ...; ``video_keys``) and optionally a class label (``cls``). The shards, URLs,
index, coverage, splitting, shuffle buffer, checkpointable position and bad-data
accounting are the image ``webdataset`` source's (:class:`TarShards`); only the
decoder differs: it samples clips (:mod:`jepakit_data.clips`) from the video decoded
by :mod:`jepakit_data.video_decode`. A corrupt or truncated video is a bad sample:
skipped, counted and named in the run's log, never a crash.

A sample's randomness (start frame, crop, flip) is keyed on its slot in the stream, so
a resumed run draws the same clips as the uninterrupted one.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import torch
from attrs import validators as v

from jepakit.config import check
from jepakit.data.stream import RawSample, SampleError, StreamOptions
from jepakit.data.viewsources import sample_seed
from jepakit.errors import ConfigError

from .clips import ClipTransform, clip_indices
from .synthetic_video import frames_for
from .transforms import GRAY_MEAN, GRAY_STD, IMAGENET_MEAN, IMAGENET_STD
from .video_decode import VideoError, VideoInfo, decode_clips
from .webdataset import TarShards, _keys, resolve_urls

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "m4v", "ogv", "mpg", "mpeg", "ts",
                    "flv", "gif")


@attrs.define
class VideoWebDatasetConfig(StreamOptions):
    urls: str | list[str] = ""
    """Shards: ``dir/shard-{000000..000099}.tar``, a list, ``pipe:`` commands, or an index.json."""
    index: str | None = None
    """An index.json giving per-shard sample counts (found automatically next to local shards)."""
    video_keys: str | list[str] = ";".join(VIDEO_EXTENSIONS)
    """Extensions to take the video from, first present wins."""
    label_key: str = "cls"
    frames_per_clip: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Frames per clip; defaults to the encoder's ``num_frames``."""
    frame_step: int = attrs.field(default=4, validator=v.gt(0))
    """Take every ``frame_step``-th frame (V-JEPA: 4)."""
    fps: float | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """A target frame rate instead of ``frame_step``: the step is the video's rate / fps
    (V-JEPA 2: 4 fps); ``frame_step`` still applies to videos that state no rate."""
    clips_per_video: int = attrs.field(default=1, validator=v.gt(0))
    """Evaluation: clips spread evenly over each video; a sample is then [K, C, T, H, W]."""
    evaluation: bool = False
    """No random start, crop or flip: evenly spaced clips, the centred square of each frame."""
    image_size: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Frame size after the crop; defaults to the encoder's image size."""
    crop_scale: tuple[float, float] = (0.3, 1.0)
    """Area of the random resized crop, as a fraction of the frame (V-JEPA 2: 0.3-1)."""
    crop_ratio: tuple[float, float] = (0.75, 1.35)
    """Aspect ratios of the crop (V-JEPA 2: 0.75-1.35)."""
    horizontal_flip: bool = True
    mean: tuple[float, ...] | None = None
    """Normalisation mean per channel (default ImageNet's; its channel average for 1 channel)."""
    std: tuple[float, ...] | None = None
    shuffle_buffer: int = attrs.field(default=64, validator=v.ge(0))
    """Encoded videos held for shuffling (megabytes each for real video, so fewer than
    the images' 1000)."""

    def __attrs_post_init__(self) -> None:
        check(0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
              f"data.params.crop_scale: need 0 < low <= high <= 1, got {list(self.crop_scale)}")
        check(0 < self.crop_ratio[0] <= self.crop_ratio[1],
              f"data.params.crop_ratio: need 0 < low <= high, got {list(self.crop_ratio)}")
        check((self.mean is None) == (self.std is None),
              "data.params: set both mean and std, or neither")
        check(self.clips_per_video == 1 or self.evaluation,
              f"data.params.clips_per_video={self.clips_per_video} needs data.params.evaluation"
              "=true (training takes one clip per video sample)")


class VideoDecoder:
    """Raw sample -> (clip [C, T, H, W] or clips [K, C, T, H, W], label). Picklable."""

    def __init__(self, transform: ClipTransform, frames: int, step: int, fps: float | None,
                 clips: int, evaluation: bool, gray: bool, seed: int,
                 video_keys: tuple[str, ...], label_key: str) -> None:
        self.transform = transform
        self.frames, self.step, self.fps, self.clips = frames, step, fps, clips
        self.evaluation = evaluation
        self.gray = gray
        self.seed = seed
        self.video_keys = video_keys
        self.label_key = label_key

    def label(self, raw: RawSample) -> int:
        value = raw.get(self.label_key)
        if value is None:
            return -1
        try:
            return int(value.decode() if isinstance(value, bytes) else value)
        except ValueError:
            raise SampleError(f"label {self.label_key}={value!r} is not an integer") from None

    def rng(self, raw: RawSample) -> random.Random | None:
        if self.evaluation:
            return None
        slot = raw.get("__slot__")
        return random.Random(sample_seed(self.seed, *slot) if slot is not None else None)

    def __call__(self, raw: RawSample) -> tuple[torch.Tensor, int]:
        key = next((k for k in self.video_keys if k in raw), None)
        if key is None:
            present = sorted(k for k in raw if not k.startswith("__"))
            raise SampleError(f"no video in the sample (has {present or 'nothing'}; "
                              f"looked for {list(self.video_keys)})")
        label, rng = self.label(raw), self.rng(raw)

        def choose(info: VideoInfo) -> list[list[int]]:
            return clip_indices(info, self.frames, self.step, self.fps, self.clips, rng)

        try:
            frames = decode_clips(raw[key], choose, gray=self.gray)
        except VideoError as exc:
            raise SampleError(f"undecodable {key}: {exc}") from None
        clips = [self.transform(f, rng) for f in frames]
        return (clips[0] if len(clips) == 1 else torch.stack(clips)), label


def make_video_webdataset(config: VideoWebDatasetConfig, *, image_size: int, in_chans: int = 3,
                          seed: int = 0, num_frames: int | None = None, views: Any = None
                          ) -> TarShards:
    """Samples are ``(clip [C, T, H, W], label)`` (label -1 without ``cls``)."""
    if views is not None:
        raise ConfigError("views: multi-crop views are for image datasets; video_webdataset "
                          "yields clips (remove the recipe's views)")
    if in_chans not in (1, 3):
        raise ConfigError(f"video_webdataset decodes 1 (gray) or 3 (RGB) channels; the encoder "
                          f"takes in_chans={in_chans}")
    if config.mean is not None and len(config.mean) != in_chans:
        raise ConfigError(f"data.params.mean has {len(config.mean)} values for {in_chans} "
                          "channel(s)")
    frames = frames_for(config.frames_per_clip, num_frames, "video_webdataset")
    urls, expected = resolve_urls(config)  # type: ignore[arg-type]
    default_mean, default_std = ((IMAGENET_MEAN, IMAGENET_STD) if in_chans == 3
                                 else (GRAY_MEAN, GRAY_STD))
    transform = ClipTransform(config.image_size or image_size, config.mean or default_mean,
                              config.std or default_std, config.crop_scale, config.crop_ratio,
                              config.horizontal_flip)
    decoder = VideoDecoder(transform, frames, config.frame_step, config.fps,
                           config.clips_per_video, config.evaluation, in_chans == 1, seed,
                           tuple(_keys(config.video_keys)), config.label_key)
    return TarShards(urls, decoder, config, seed=seed, expected=expected)
