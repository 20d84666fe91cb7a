"""Clips/s per core of the two candidate video decoders, PyAV and torchcodec, on the same clips.

Each clip is ``--frames`` frames ``--step`` apart from a random start in a video held in
memory (as a shard sample is), decoded to RGB uint8 on one thread (FFmpeg's own threads
off, torch on one thread), so the figure is per core. Videos are generated here with
PyAV: smooth moving patterns (natural-video-like entropy, not noise), H.264 in mp4 and
VP9 in webm, at two sizes: 64 px x 32 frames (Moving Fashion-MNIST) and 256 px x 160
frames (a 5-second clip at 32 fps, a resized Kinetics-like video).

    .venv/bin/python benchmarks/video_decode.py                 # 5 rounds of 1 s per decoder
    .venv/bin/python benchmarks/video_decode.py --rounds 9 --json out.json

The decoders take turns (interleaved rounds, median reported), so a change in the
machine's load affects both alike.

torchcodec loads the system's FFmpeg shared libraries (libavcodec 4 to 8) at first use;
where they are missing, the benchmark says so, with the loader's reason, and measures
PyAV alone.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

CASES = (  # (name, size, frames, codec, container)
    ("64px-32f-h264", 64, 32, "libx264", "mp4"),
    ("256px-160f-h264", 256, 160, "libx264", "mp4"),
    ("256px-160f-vp9", 256, 160, "libvpx-vp9", "webm"),
)


def make_video(size: int, frames: int, codec: str, fmt: str, seed: int = 0) -> bytes:
    """Moving sinusoidal patterns and a gliding square, lightly noised."""
    import av

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=32)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            phase = t / frames * 2 * np.pi
            rgb = np.stack([np.sin(6 * xs + phase), np.cos(5 * ys - phase),
                            np.sin(4 * (xs + ys) + 2 * phase)], -1)
            pixels = (rgb * 90 + 128 + rng.normal(0, 4, rgb.shape)).clip(0, 255).astype(np.uint8)
            c = int((t * 3) % (size - size // 4))
            pixels[c:c + size // 4, c:c + size // 4] = (240, 200, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def pyav_clip(data: bytes, indices: list[int]) -> torch.Tensor:
    """Decode from the start to the last wanted frame, keeping the wanted ones
    (jepakit's decoder, plugins/jepakit_data/video_decode.py)."""
    from jepakit_data.video_decode import decode_frames

    return decode_frames(data, indices, threads=1)


def torchcodec_clip(data: bytes, indices: list[int]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(data, num_ffmpeg_threads=1, dimension_order="NHWC",
                           seek_mode="exact")
    return decoder.get_frames_at(indices).data


def torchcodec_problem() -> str | None:
    """None if torchcodec can decode here, else why not."""
    try:
        from torchcodec.decoders import VideoDecoder

        VideoDecoder(make_video(16, 2, "libx264", "mp4"))
    except Exception as exc:  # ImportError, or OSError/RuntimeError from loading FFmpeg
        text = " ".join(str(exc).split())
        cause = ("its FFmpeg shared libraries (libavcodec, libavformat, ...) are not installed"
                 if "libtorchcodec" in text or "FFmpeg" in text else text[:300])
        return f"torchcodec cannot run here: {type(exc).__name__}: {cause}"
    return None


def rates(decoders: dict[str, Callable[[bytes, list[int]], torch.Tensor]], videos: list[bytes],
          total: int, frames: int, step: int, seconds: float, rounds: int
          ) -> tuple[dict[str, float], dict[str, tuple[int, ...]]]:
    """Median clips/s of each decoder over ``rounds`` interleaved rounds of ``seconds``
    (so a change in the machine's load hits all alike), after one warm-up clip each."""
    span = (frames - 1) * step + 1

    def indices(rng: random.Random) -> list[int]:
        start = rng.randrange(max(1, total - span + 1))
        return [min(start + i * step, total - 1) for i in range(frames)]

    shapes = {name: tuple(decode(videos[0], indices(random.Random(0))).shape)
              for name, decode in decoders.items()}
    measured: dict[str, list[float]] = {name: [] for name in decoders}
    for r in range(rounds):
        for name, decode in decoders.items():
            rng = random.Random(r)  # the same clips for every decoder
            done, begin = 0, time.perf_counter()
            while time.perf_counter() - begin < seconds:
                decode(videos[done % len(videos)], indices(rng))
                done += 1
            measured[name].append(done / (time.perf_counter() - begin))
    return {name: float(np.median(v)) for name, v in measured.items()}, shapes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (16)")
    parser.add_argument("--step", type=int, default=4, help="frame step in the 160-frame "
                        "videos (4); the 32-frame videos use 2")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="timing per decoder per round (1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--videos", type=int, default=4, help="distinct videos per case (4)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = torchcodec_problem()
    decoders: dict[str, Callable[[bytes, list[int]], torch.Tensor]] = {"pyav": pyav_clip}
    if problem is None:
        decoders["torchcodec"] = torchcodec_clip
    else:
        print(problem + "; measuring PyAV alone", file=sys.stderr)
    results: list[dict[str, Any]] = []
    print(f"{'case':<18} {'decoder':<11} {'clips/s/core':>12}  clip")
    for name, size, total, codec, fmt in CASES:
        videos = [make_video(size, total, codec, fmt, seed) for seed in range(args.videos)]
        step = args.step if total > 2 * args.frames else 2
        row: dict[str, Any] = {"case": name, "frames": args.frames, "step": step,
                               "bytes": int(np.mean([len(v) for v in videos]))}
        measured, shapes = rates(decoders, videos, total, args.frames, step, args.seconds,
                                 args.rounds)
        for label, clips_s in measured.items():
            row[label] = round(clips_s, 1)
            print(f"{name:<18} {label:<11} {clips_s:>12.1f}  {list(shapes[label])}")
        if "torchcodec" in row:
            row["torchcodec_over_pyav"] = round(row["torchcodec"] / row["pyav"], 2)
        results.append(row)
    if args.json:
        import av

        meta = {"machine": platform.processor() or platform.machine(), "pyav": av.__version__,
                "torchcodec": None if problem else __import__("torchcodec").__version__,
                "torchcodec_problem": problem}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
