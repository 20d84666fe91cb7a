"""Encoded video bytes -> chosen frames as uint8 tensors, with PyAV (FFmpeg in its wheel).

PyAV rather than torchcodec (benchmarks/video_decode.py; docs/data.md, "Choosing the
decoder"): its wheels carry their own FFmpeg, so ``pip install`` is the whole set-up
on any machine, while torchcodec needs the system's FFmpeg libraries.

Data is never code: the video is opened from bytes in memory, and only the demuxers of
plain container formats (:data:`CONTAINERS`) may claim it, so no playlist or concat
script inside a "video" can make FFmpeg open other files or URLs. Dimensions and frame
counts are checked before frames are kept, so a few kilobytes that declare a huge
video cannot exhaust memory. Anything FFmpeg cannot read, and any video shorter than
its container says (truncated), raises :class:`VideoError`, which the dataset counts
as a bad sample.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import attrs
import torch

CONTAINERS = "mov,mp4,matroska,webm,avi,mpegts,mpeg,ogg,flv,ivf,gif"
"""Demuxers allowed to open a sample (FFmpeg's ``format_whitelist``)."""
MAX_FRAME_PIXELS = 1 << 24
"""16.7 megapixels (4096 x 4096) per frame."""
MAX_FRAMES = 100_000
"""Frames decoded from one video at most (an hour at 30 fps is 108,000)."""
MAX_KEPT_PIXELS = 1 << 28
"""Pixels of the frames kept from one video (768 MB of RGB)."""


class VideoError(ValueError):
    """The bytes are not a usable video (corrupt, truncated, too large, no video stream)."""


@attrs.frozen
class VideoInfo:
    """What sampling needs to know before frames are chosen."""

    num_frames: int
    fps: float
    """Average frame rate (0 if the container does not say)."""
    height: int
    width: int


Chooser = Callable[[VideoInfo], Sequence[Sequence[int]]]
"""Given the video, the frame indices of each clip to take from it."""


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text.replace(chr(39) + '<none>' + chr(39), '').strip(': ')}"


def decode_clips(data: bytes, choose: Chooser, *, gray: bool = False, threads: int = 1
                 ) -> list[torch.Tensor]:
    """Each chosen clip as uint8 [T, H, W, C] (C = 1 with ``gray``, else 3).

    Frames are decoded in order up to the last one wanted; only the wanted ones are
    converted. A container that does not state its frame count (webm often does not) is
    decoded whole first."""
    try:
        return _decode(data, choose, gray, threads)
    except VideoError:
        raise
    except _ChooserFailed as failed:  # a bug, not bad data: let it stop the run
        raise failed.error from None
    except Exception as exc:  # PyAV/FFmpeg raise many types for broken input
        raise VideoError(_describe(exc)) from None


def decode_frames(data: bytes, indices: Sequence[int], *, gray: bool = False, threads: int = 1
                  ) -> torch.Tensor:
    """The frames at ``indices``, uint8 [T, H, W, C]."""
    return decode_clips(data, lambda info: [indices], gray=gray, threads=threads)[0]


def _decode(data: bytes, choose: Chooser, gray: bool, threads: int) -> list[torch.Tensor]:
    import av

    if not data:
        raise VideoError("empty video")
    with av.open(io.BytesIO(data), mode="r",
                 container_options={"format_whitelist": CONTAINERS}) as container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = threads
        if threads != 1:
            stream.thread_type = "AUTO"
        height, width = stream.codec_context.height, stream.codec_context.width
        if height * width > MAX_FRAME_PIXELS:
            raise VideoError(f"video declares {width} x {height} pixels per frame, more than "
                             f"the {MAX_FRAME_PIXELS // 1_000_000} megapixels jepakit decodes")
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        fmt = "gray" if gray else "rgb24"
        declared = int(stream.frames or 0)
        if declared <= 0:  # count by decoding: keep every frame (bounded), then choose
            frames = []
            for frame in container.decode(stream):
                frames.append(frame)
                if len(frames) * height * width > MAX_KEPT_PIXELS or len(frames) > MAX_FRAMES:
                    raise VideoError("video too long to decode without a frame count")
            if not frames:
                raise VideoError("no frame could be decoded")
            short = _ends_early(container, stream, frames[0].pts, frames[-1].pts, fps)
            if short:
                raise VideoError(short)
            clips = _chosen(choose, VideoInfo(len(frames), fps, height, width))
            return [_stack([_pixels(frames[i], fmt) for i in clip]) for clip in clips]
        if declared > MAX_FRAMES:
            raise VideoError(f"video declares {declared} frames, more than {MAX_FRAMES}")
        clips = _chosen(choose, VideoInfo(declared, fps, height, width))
        wanted = {i for clip in clips for i in clip}
        if len(wanted) * height * width > MAX_KEPT_PIXELS:
            raise VideoError(f"{len(wanted)} frames of {width} x {height} are too many to keep")
        last = max(wanted)
        kept = {}
        count = 0
        for frame in container.decode(stream):
            if count in wanted:
                kept[count] = _pixels(frame, fmt)
            count += 1
            if count > last:
                break
        if count <= last:
            raise VideoError(f"truncated: {count} frame(s) decoded, the container says {declared}")
        return [_stack([kept[i] for i in clip]) for clip in clips]


def _ends_early(container: object, stream: object, first: int | None, last: int | None,
                fps: float) -> str | None:
    """Why the frames decoded stop short of the duration the container states (a
    truncated mkv/webm, which states no frame count and decodes quietly up to the cut),
    allowing two frames and 5%; None if they do not, or nothing can be told."""
    duration = getattr(container, "duration", None)  # microseconds
    time_base = getattr(stream, "time_base", None)
    if not duration or fps <= 0 or first is None or last is None or time_base is None:
        return None
    stated = duration / 1_000_000
    decoded = float((last - first) * time_base) + 1 / fps
    if decoded < stated - 2 / fps - 0.05 * stated:
        return f"truncated: frames cover {decoded:.2f} s of the {stated:.2f} s the container states"
    return None


class _ChooserFailed(Exception):
    def __init__(self, error: Exception) -> None:
        self.error = error


def _chosen(choose: Chooser, info: VideoInfo) -> list[list[int]]:
    """The chooser's clips, checked; its errors pass through as bugs."""
    try:
        clips = [list(clip) for clip in choose(info)]
        if not clips or not all(clips) or any(not 0 <= i < info.num_frames
                                             for clip in clips for i in clip):
            raise ValueError(f"frame choice {clips} is not within the video's "
                             f"{info.num_frames} frames")
    except Exception as exc:
        raise _ChooserFailed(exc) from exc
    return clips


_reformatter = None


def _pixels(frame: object, fmt: str) -> object:
    """The frame as an ndarray in ``fmt``, through one reformatter per process: it keeps
    FFmpeg's scaler between frames (``to_ndarray(format=...)`` builds one per frame,
    which costs 3x the decoding of a small frame)."""
    global _reformatter
    if _reformatter is None:
        from av.video.reformatter import VideoReformatter

        _reformatter = VideoReformatter()
    return _reformatter.reformat(frame, format=fmt).to_ndarray()


def _stack(frames: list) -> torch.Tensor:
    import numpy as np

    array = np.stack(frames)
    return torch.from_numpy(array if array.ndim == 4 else array[..., None])


def verify_video(data: bytes) -> str | None:
    """None if every frame of ``data`` decodes (as many as the container says, when it
    says), else why not: the check ``jepakit shards make`` runs on each video."""
    import av

    if not data:
        return "empty file"
    try:
        with av.open(io.BytesIO(data), mode="r",
                     container_options={"format_whitelist": CONTAINERS}) as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            height, width = stream.codec_context.height, stream.codec_context.width
            if height * width > MAX_FRAME_PIXELS:
                return f"video declares {width} x {height} pixels per frame, too many"
            declared = int(stream.frames or 0)
            count, first, last = 0, None, None
            for frame in container.decode(stream):
                count += 1
                first = frame.pts if first is None else first
                last = frame.pts
                if count > MAX_FRAMES:
                    return f"more than {MAX_FRAMES} frames"
            if count == 0:
                return "no frame could be decoded"
            if declared and count < declared:
                return f"truncated: {count} frame(s) decoded, the container says {declared}"
            rate = stream.average_rate or stream.guessed_rate
            return None if declared else _ends_early(container, stream, first, last,
                                                     float(rate) if rate else 0.0)
    except Exception as exc:  # PyAV/FFmpeg raise many types for broken input
        return _describe(exc)
