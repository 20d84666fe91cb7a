"""uint8 frames -> encoded video bytes, with PyAV: what ``jepakit shards make`` writes
for generated video (Moving Fashion-MNIST) and what the tests decode."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

CODECS = {"mp4": "libx264", "mkv": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4"}
"""The codec written into each container (all in PyAV's wheels)."""
FORMATS = {"mp4": "mp4", "mkv": "matroska", "webm": "webm", "avi": "avi"}


def encode_video(frames: np.ndarray, fps: int = 8, ext: str = "mp4", crf: int = 18,
                 options: Mapping[str, str] | None = None) -> bytes:
    """Frames [T, H, W] (gray) or [T, H, W, 3] (RGB), uint8, even H and W, as one video.

    H.264 at ``crf`` 18 (visually lossless), on one thread, without x264's lookahead and
    in FFmpeg's bitexact mode (no random stream IDs), so the same frames always give the
    same bytes: with the lookahead on, about one 64 px clip in ten came out different
    when encoded again (640 encodes of 16 clips: none differed without it)."""
    import av

    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"expected uint8 frames [T, H, W(, 3)], got {frames.dtype} "
                         f"{list(frames.shape)}")
    if ext not in CODECS:
        raise ValueError(f"unknown video extension {ext!r}; choose from {', '.join(CODECS)}")
    pixel_format = "gray" if frames.ndim == 3 else "rgb24"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=FORMATS[ext],
                 container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(CODECS[ext], rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        codec_options = {"flags": "+bitexact"}
        if CODECS[ext] in ("libx264", "libvpx-vp9"):
            codec_options["crf"] = str(crf)
        if CODECS[ext] == "libx264":  # its lookahead is not repeatable (1 in ~10 clips of
            codec_options["x264-params"] = "rc-lookahead=0:mbtree=0"  # 64 px); 4x faster off
        if CODECS[ext] == "libvpx-vp9":
            codec_options["b"] = "0"
        stream.options = {**codec_options, **(options or {})}
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=pixel_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()
