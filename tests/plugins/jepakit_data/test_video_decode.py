"""PyAV decoding: the right frames, bad videos refused with a reason, no code in data."""

from __future__ import annotations

import re

import pytest
from jepakit_data import video_decode
from jepakit_data.video_decode import VideoError, decode_clips, decode_frames, verify_video
from jepakit_data.video_encode import encode_video
from videokit import frame_numbers, indexed_frames, indexed_video


@pytest.mark.parametrize("ext", ["mp4", "webm", "mkv", "avi"])
def test_decodes_the_chosen_frames(ext):
    """mp4 and avi state their frame count, webm and mkv do not (decoded whole first)."""
    data = indexed_video(30, ext=ext)
    frames = decode_frames(data, [0, 3, 29, 3], gray=True)
    assert frames.shape == (4, 16, 16, 1)
    assert frame_numbers(frames) == [0, 3, 29, 3]
    assert decode_frames(data, [5]).shape == (1, 16, 16, 3)  # RGB by default
    assert verify_video(data) is None


def test_the_chooser_sees_the_video_and_picks_several_clips():
    seen = []

    def choose(info):
        seen.append(info)
        return [[0, 1], [info.num_frames - 1]]

    clips = decode_clips(indexed_video(10, fps=12), choose, gray=True)
    assert [frame_numbers(c) for c in clips] == [[0, 1], [9]]
    assert (seen[0].num_frames, seen[0].fps, seen[0].height, seen[0].width) == (10, 12.0, 16, 16)


def test_a_chooser_bug_is_raised_not_counted_as_bad_data():
    with pytest.raises(ValueError, match="not within"):
        decode_frames(indexed_video(5), [7])
    with pytest.raises(ZeroDivisionError):
        decode_clips(indexed_video(5), lambda info: [[1 // 0]])


def truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


CUT = "Invalid data|truncated|no video stream|no frame"
"""What a cut file gives depends on where the cut falls (the index of an mp4 is at its end)."""


@pytest.mark.parametrize("name, data, reason", [
    ("empty", b"", "empty"),
    ("junk", b"\x00\x01junk" * 50, "Invalid data"),
    ("text", b"hello, this is not a video\n" * 20, "Invalid data"),
    *[(f"{ext} cut at {keep:.0%}", truncated(indexed_video(30, ext=ext), keep), CUT)
      for ext in ("mp4", "mkv", "webm", "avi") for keep in (0.5, 0.7, 0.9)],
])
def test_bad_videos_raise_video_error_with_a_reason(name, data, reason):
    with pytest.raises(VideoError, match=reason):
        decode_frames(data, [29])  # the last frame: a cut before it must be noticed
    problem = verify_video(data)
    assert problem is not None and re.search(reason, problem)


def test_a_playlist_or_concat_script_is_not_opened():
    """Data is never code: only plain container demuxers may claim the bytes, so a
    "video" that is an HLS playlist or an ffconcat script cannot make FFmpeg read files."""
    target = "/etc/hostname"
    for script in (f"#EXTM3U\n#EXTINF:10,\nfile://{target}\n#EXT-X-ENDLIST\n",
                   f"ffconcat version 1.0\nfile {target}\n"):
        with pytest.raises(VideoError):
            decode_frames(script.encode(), [0])


def test_oversized_frames_are_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(video_decode, "MAX_FRAME_PIXELS", 100)
    with pytest.raises(VideoError, match="pixels per frame"):
        decode_frames(indexed_video(3), [0])
    assert "pixels per frame" in (verify_video(indexed_video(3)) or "")


def test_encoding_is_deterministic_and_checks_its_input():
    frames = indexed_frames(6)
    for ext in ("mp4", "mkv", "webm", "avi"):
        assert len({encode_video(frames, ext=ext) for _ in range(5)}) == 1, ext
    with pytest.raises(ValueError, match="uint8"):
        encode_video(frames.astype("float32"))
    with pytest.raises(ValueError, match="extension"):
        encode_video(frames, ext="mov")
