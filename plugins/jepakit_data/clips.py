"""Which frames make a clip, and the crop, flip and normalisation of a clip's frames.

Sampling follows V-JEPA (Bardes et al., 2024, appendix; V-JEPA 2, Assran et al., 2025):
a clip is ``frames`` frames ``step`` apart (or spaced to a target ``fps``), from a random
start when training and from evenly spaced starts for evaluation, several clips per
video there; a video shorter than a clip repeats its last frame. The spatial
augmentation is one random resized crop and one flip drawn per clip and applied to every
frame alike, so the motion inside a clip is the video's own.

Randomness comes from a ``random.Random`` the caller keys on the sample's place in the
run, so a resumed run samples exactly as the uninterrupted one.
"""

from __future__ import annotations

import math
import random

import attrs
import torch
import torch.nn.functional as F

from .video_decode import VideoInfo


def frame_step(info: VideoInfo, step: int, fps: float | None) -> int:
    """``step``, or with a target ``fps`` the step that comes closest to it at the
    video's own rate (at least 1; ``step`` when the video does not state its rate)."""
    if fps is None or info.fps <= 0:
        return step
    return max(1, round(info.fps / fps))


def clip_starts(total: int, span: int, clips: int, rng: random.Random | None) -> list[int]:
    """Start frames: random (``rng`` given) or evenly spaced over the video (centred for one)."""
    room = max(0, total - span)
    if rng is not None:
        return [rng.randint(0, room) for _ in range(clips)]
    if clips == 1:
        return [room // 2]
    return [round(room * k / (clips - 1)) for k in range(clips)]


def clip_indices(info: VideoInfo, frames: int, step: int, fps: float | None, clips: int,
                 rng: random.Random | None) -> list[list[int]]:
    """Frame indices of each of ``clips`` clips of ``frames`` frames."""
    every = frame_step(info, step, fps)
    span = (frames - 1) * every + 1
    return [[min(start + i * every, info.num_frames - 1) for i in range(frames)]
            for start in clip_starts(info.num_frames, span, clips, rng)]


def crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
             rng: random.Random) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random resized crop: ``scale`` of the area, aspect ratio in
    ``ratio`` (log-uniform), as torchvision's RandomResizedCrop; the centred largest
    fitting crop after 10 misses."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def centre_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred square: a resize of the short side then a centre crop."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


@attrs.define
class ClipTransform:
    """uint8 frames [T, H, W, C] -> float clip [C, T, size, size], normalised.

    Training (``rng`` given): one random resized crop and, with ``flip``, one coin for a
    horizontal flip, both shared by all frames. Evaluation (no ``rng``): the centred
    square, no flip."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.35)
    flip: bool = True

    def __call__(self, frames: torch.Tensor, rng: random.Random | None) -> torch.Tensor:
        _, height, width, chans = frames.shape
        if rng is None:
            top, left, h, w = centre_box(height, width)
            flip = False
        else:
            top, left, h, w = crop_box(height, width, self.crop_scale, self.crop_ratio, rng)
            flip = self.flip and rng.random() < 0.5
        x = frames[:, top:top + h, left:left + w].permute(0, 3, 1, 2).float().div_(255)
        if (h, w) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        if flip:
            x = x.flip(-1)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, chans, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, chans, 1, 1)
        return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()
