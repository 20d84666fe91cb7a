"""Deterministic procedural clips, so video training and tests need no files.

The ten classes are the objects of the ``synthetic`` images (a hue, a shape, a fill of
their own, :mod:`jepakit_data.synthetic`). A clip shows one to three copies of its
class's object gliding at constant velocity and bouncing off the frame's edges, over
a still background of two regions in two other palette hues, with fresh noise in every
frame. So a masked tube is predictable from the rest of the clip (the same object
earlier or later, on its path), not from its position, and the class is not in the
colour histogram (the background's hues are as present as the object's): a linear
probe on pooled features of a random network stays near chance (0.10).

Clip ``i`` depends only on ``(seed, i)``; :meth:`SyntheticVideo.held_out` gives clips
past the dataset's own indices, for evaluation.
"""

from __future__ import annotations

import math

import attrs
import torch
from attrs import validators as v

from jepakit.errors import ConfigError

from .synthetic import NUM_CLASSES, SyntheticImages, _shape, class_parts

DEFAULT_FRAMES = 16


@attrs.define
class SyntheticVideoConfig:
    num_samples: int = attrs.field(default=10_000, validator=v.gt(0))
    image_size: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Frame size; defaults to the encoder's image size."""
    frames_per_clip: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Clip length; defaults to the encoder's ``num_frames`` (16 without one)."""
    noise: float = attrs.field(default=0.1, validator=v.ge(0))
    objects: tuple[int, int] = (1, 3)
    """Moving copies of the class's object per clip (inclusive range)."""
    speed: tuple[float, float] = (0.04, 0.12)
    """Distance an object moves per frame, in half-widths of the frame (inclusive range)."""
    scale: float = attrs.field(default=1.0, validator=v.gt(0))
    """Multiplies the pixel values (about [-1, 1]), as ``synthetic``'s ``scale``."""

    def __attrs_post_init__(self) -> None:
        lo, hi = self.objects
        if not 1 <= lo <= hi:
            raise ValueError(f"objects: expected [min, max] with 1 <= min <= max, got "
                             f"{list(self.objects)}")
        if not 0 <= self.speed[0] <= self.speed[1]:
            raise ValueError(f"speed: expected [min, max] with 0 <= min <= max, got "
                             f"{list(self.speed)}")


def frames_for(frames_per_clip: int | None, num_frames: int | None, what: str) -> int:
    """The clip length: the encoder's ``num_frames`` and the dataset's ``frames_per_clip``
    must agree when both are given."""
    if frames_per_clip is not None and num_frames is not None and frames_per_clip != num_frames:
        raise ConfigError(f"data.params.frames_per_clip={frames_per_clip} but the encoder takes "
                          f"clips of model.encoder.params.num_frames={num_frames} ({what})")
    return frames_per_clip or num_frames or DEFAULT_FRAMES


def bounce(start: torch.Tensor, step: float, frames: int, limit: float = 0.8) -> torch.Tensor:
    """Positions over ``frames`` of a point moving ``step`` per frame inside
    ``[-limit, limit]``, reflected at the walls (a triangle wave)."""
    span = 2 * limit
    travelled = (start + limit + step * torch.arange(frames, dtype=torch.float32)) % (2 * span)
    return torch.where(travelled > span, 2 * span - travelled, travelled) - limit


class SyntheticVideo(SyntheticImages):
    """Map-style dataset of ``(clip [C, T, H, W] float, label int)``."""

    def __init__(self, config: SyntheticVideoConfig, *, image_size: int | tuple[int, int] = 32,
                 in_chans: int = 3, seed: int = 0, num_frames: int = DEFAULT_FRAMES,
                 first: int = 0) -> None:
        size = config.image_size or image_size
        self.config = config  # type: ignore[assignment]
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.in_chans = in_chans
        self.num_samples = config.num_samples
        self.noise = config.noise
        self.seed = seed
        self.first = first
        self.num_frames = num_frames

    def held_out(self, num_samples: int) -> SyntheticVideo:  # type: ignore[override]
        """``num_samples`` clips this dataset never yields (the indices after its own)."""
        config = attrs.evolve(self.config, num_samples=num_samples)
        return SyntheticVideo(config, image_size=self.size, in_chans=self.in_chans,
                              seed=self.seed, num_frames=self.num_frames,
                              first=self.first + self.num_samples)

    def render(self, label: int, g: torch.Generator) -> torch.Tensor:
        h, w, t = *self.size, self.num_frames
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")

        def r(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g))

        def pick(options: list[int]) -> int:
            return options[int(torch.randint(len(options), (), generator=g))]

        shape, fill, hue = class_parts(label)
        first = pick([c for c in range(NUM_CLASSES) if c != label])
        second = pick([c for c in range(NUM_CLASSES) if c not in (label, first)])
        angle, offset = r(0, 2 * math.pi), r(-0.5, 0.5)
        side = xs * math.cos(angle) + ys * math.sin(angle) > offset
        background = torch.where(side, self._shade(first / NUM_CLASSES, r),
                                 self._shade(second / NUM_CLASSES, r))
        clip = background.unsqueeze(1).expand(self.in_chans, t, h, w).clone()
        lo, hi = self.config.objects
        slow, fast = self.config.speed  # type: ignore[attr-defined]
        for _ in range(lo + int(torch.randint(hi - lo + 1, (), generator=g))):
            size, heading, speed = r(0.2, 0.35), r(0, 2 * math.pi), r(slow, fast)
            cy = bounce(torch.tensor(r(-0.8, 0.8)), speed * math.sin(heading), t).view(t, 1, 1)
            cx = bounce(torch.tensor(r(-0.8, 0.8)), speed * math.cos(heading), t).view(t, 1, 1)
            mask = _shape(shape, ys - cy, xs - cx, size)  # [T, H, W]
            if fill == "striped":  # stripes ride with the object
                tilt, freq = r(0, math.pi), r(5, 7)
                along = (xs - cx) * math.cos(tilt) + (ys - cy) * math.sin(tilt)
                mask = mask & (torch.sin(along * freq * math.pi) > -0.3)
            clip = torch.where(mask.unsqueeze(0), self._shade(hue, r).unsqueeze(1), clip)
        clip = clip * 2 - 1 + self.noise * torch.randn(self.in_chans, t, h, w, generator=g)
        return (clip * self.config.scale).float()


def make_synthetic_video(config: SyntheticVideoConfig, *, image_size: int | tuple[int, int] = 32,
                         in_chans: int = 3, seed: int = 0, num_frames: int | None = None,
                         views: object = None) -> SyntheticVideo:
    """The ``synthetic_video`` source: clips of the encoder's ``num_frames``."""
    if views is not None:
        raise ConfigError("views: multi-crop views are for image datasets; synthetic_video "
                          "yields whole clips (remove the recipe's views)")
    frames = frames_for(config.frames_per_clip, num_frames, "synthetic_video")
    return SyntheticVideo(config, image_size=image_size, in_chans=in_chans, seed=seed,
                          num_frames=frames)
