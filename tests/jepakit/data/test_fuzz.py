"""Hostile and broken input, fuzzed: the tar reader, the shard index reader, the image
decoder and the checkpoint loader.

The only outcomes allowed: success, a sample skipped and counted (a bad marker or a
``SampleError``), or a one-line jepakit error. Never another exception, a hang (each
case runs under a timer) or a file written anywhere (each test runs in an empty
working directory that must stay empty). Few examples each: the suite takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from jepakit import checkpoint
from jepakit.data import tar
from jepakit.data.decode import ImageDecoder
from jepakit.data.index import FORMAT, read_index, shard_urls
from jepakit.data.stream import SampleError, StreamOptions
from jepakit.errors import JepakitError

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SECONDS = 5.0
"""Longest one case may take (they take milliseconds)."""


class Hang(Exception):
    pass


@contextlib.contextmanager
def bounded(seconds: float = SECONDS) -> Iterator[None]:
    """Fail the case instead of hanging: SIGALRM after ``seconds``."""
    def alarm(signum, frame):
        raise Hang(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture()
def empty_cwd(tmp_path, monkeypatch) -> Iterator[Path]:
    """An empty working directory that must still be empty afterwards."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert list(cwd.iterdir()) == []


def one_line(exc: Exception) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


def flip(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for p in positions:
        out[p % len(out)] ^= 1 << (p % 8)
    return bytes(out)


# -- tar ------------------------------------------------------------------------------
def png(size: int = 6, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (seed * 40 % 256, 100, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def shard(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


GOOD = shard({f"k{i}.png": png(seed=i) for i in range(3)} | {f"k{i}.cls": b"1" for i in range(3)})


def read_tar(data: bytes) -> list[dict]:
    """The strict reader's samples, or TarCorrupt (the only exception it may raise)."""
    with bounded():
        try:
            return list(tar.Samples(tar.open_stream(io.BytesIO(data))))
        except tar.TarCorrupt as exc:
            one_line(exc)
            return []


@FUZZ
@given(st.binary(max_size=3000))
def test_tar_random_bytes(data):
    read_tar(data)
    read_tar(b"\x1f\x8b\x08\x00" + data)  # looks gzipped: damaged gzip is TarCorrupt too


@FUZZ
@given(st.integers(0, len(GOOD)), st.lists(st.integers(0, 8 * len(GOOD)), max_size=6))
def test_tar_truncations_and_bit_flips(cut, flips):
    read_tar(GOOD[:cut])
    read_tar(flip(GOOD, flips))


def test_tar_shards_on_disk_never_raise(tmp_path, empty_cwd):
    """Through the webdataset plugin's reader: damage becomes counted bad markers."""
    from jepakit_data.webdataset import TarShards

    from jepakit.data.decode import ImageDecoder

    damaged = {"cut.tar": GOOD[:1500], "flipped.tar": flip(GOOD, [700 * 8, 1100 * 8]),
               "noise.tar": os.urandom(2048), "gz.tar.gz": b"\x1f\x8b" + os.urandom(500),
               "empty.tar": b""}
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    ds = TarShards([str(tmp_path / n) for n in damaged], ImageDecoder(lambda im: im),
                   StreamOptions(shuffle_buffer=0))
    for name in damaged:
        with bounded():
            out = list(ds.read_unit(str(tmp_path / name)))
        assert all(isinstance(s, dict) for s in out)


def raw_member(name: str, size: int, typeflag: bytes = b"0", data: bytes = b"",
               linkname: str = "") -> bytes:
    """One ustar header (declaring ``size``) followed by ``data``, padded."""
    header = bytearray(512)
    header[0:len(name)] = name.encode()
    header[100:108] = b"0000644\0"
    header[108:116] = header[116:124] = b"0000000\0"
    header[124:136] = f"{size:011o}\0".encode() if size < 8**11 else \
        bytes([0x80]) + size.to_bytes(11, "big")
    header[136:148] = b"00000000000\0"
    header[156:157] = typeflag
    header[157:157 + len(linkname)] = linkname.encode()
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    return bytes(header) + data + bytes(-len(data) % 512)


def test_hostile_members_are_keys_only_and_nothing_is_written(empty_cwd):
    body = png()
    hostile = b"".join([
        raw_member("/etc/evil.png", len(body), data=body),
        raw_member("../../escape.png", len(body), data=body),
        raw_member("link.png", 0, b"2", linkname="/etc/passwd"),  # symlink: skipped
        raw_member("hard.png", 0, b"1", linkname="/etc/shadow"),  # hard link: skipped
        raw_member("dev.png", 0, b"3"),  # character device: skipped
        raw_member("fifo.png", 0, b"6"),
    ]) + bytes(1024)
    samples = read_tar(hostile)
    assert [s["__key__"] for s in samples] == ["/etc/evil", "../../escape"]
    assert all(s["png"] == body for s in samples)
    assert not Path("/etc/evil.png").exists() and not (empty_cwd.parent / "escape.png").exists()


@pytest.mark.parametrize("size", [tar.MAX_MEMBER_BYTES + 1, 8 << 30, 1 << 80])
def test_huge_declared_sizes_allocate_nothing(size, empty_cwd):
    data = raw_member("big.png", size, data=b"x" * 100) + bytes(1024)
    with bounded(), pytest.raises(tar.TarCorrupt, match="declares") as info:
        list(tar.members(io.BytesIO(data)))
    one_line(info.value)


def test_a_pax_record_of_length_zero_cannot_loop():
    pax = b"0 path=x\n"
    data = raw_member("././@PaxHeader", len(pax), b"x", pax) + raw_member("a.png", 3, data=b"abc")
    with bounded(), pytest.raises(tar.TarCorrupt, match="pax"):
        list(tar.members(io.BytesIO(data + bytes(1024))))


# -- the shard index ---------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
NAMES = st.one_of(st.text(max_size=30), st.sampled_from([
    "pipe:touch x", "http://h/x.tar", "/abs.tar", "../up.tar", "a/../../b.tar", "-x.tar",
    ".hidden.tar", "ok-000.tar", "sub/ok.tar", "a b.tar", "x;y.tar", "{a,b}.tar", "~/x.tar"]))


def check_index(path: Path) -> None:
    with bounded():
        try:
            index = read_index(str(path))
        except JepakitError as exc:
            one_line(exc)
            return
    base = str(path.parent)
    for url in shard_urls(str(path), index):
        rest = url[len(base) + 1:]
        assert url.startswith(base + "/") and ".." not in rest.split("/") and ":" not in rest


@FUZZ
@given(data=st.binary(max_size=500))
def test_index_random_bytes(data, tmp_path, empty_cwd):
    (tmp_path / "index.json").write_bytes(data)
    check_index(tmp_path / "index.json")


@FUZZ
@given(junk=JSON, shards=st.lists(st.fixed_dictionaries(
    {"name": NAMES, "samples": JSON | st.integers(0, 9)}), max_size=4))
def test_index_malformed_structures_and_names(junk, shards, tmp_path, empty_cwd):
    path = tmp_path / "index.json"
    path.write_text(json.dumps(junk))
    check_index(path)
    path.write_text(json.dumps({"format": FORMAT, "shards": shards, "classes": junk,
                                "skipped": junk}))
    check_index(path)


def test_index_deep_nesting_and_size_are_one_line_errors(tmp_path, empty_cwd, monkeypatch):
    from jepakit.data import index

    path = tmp_path / "index.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    check_index(path)
    monkeypatch.setattr(index, "MAX_INDEX_BYTES", 1 << 20)
    path.write_text(json.dumps({"format": FORMAT, "shards": [], "pad": "x" * (2 << 20)}))
    with pytest.raises(JepakitError, match="larger than"):
        read_index(str(path))


# -- images ----------------------------------------------------------------------------
def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


IMAGES = {"png": png(16), "jpg": jpeg()}
DECODE = ImageDecoder(lambda image: image.size)


def decode(raw: dict) -> None:
    with bounded():
        try:
            DECODE({"__key__": "k", **raw})
        except SampleError as exc:
            one_line(exc)


@FUZZ
@given(st.sampled_from(sorted(IMAGES)), st.binary(max_size=400), st.integers(0, 2000),
       st.lists(st.integers(0, 20000), max_size=8))
def test_images_random_truncated_and_flipped(ext, noise, cut, flips):
    good = IMAGES[ext]
    decode({ext: noise})
    decode({ext: good[:cut]})
    decode({ext: flip(good, flips)})
    decode({ext: good, "cls": noise[:8]})


def bomb_png(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels in a few hundred bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 10_000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (10_000, 10_000)])
def test_decompression_bombs_are_skipped_before_allocating(width, height):
    with bounded(2.0), pytest.raises(SampleError, match="pixels") as info:
        DECODE({"__key__": "bomb", "png": bomb_png(width, height)})
    one_line(info.value)


def test_postscript_is_never_handed_to_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(x) print\n%%EOF\n"
    with pytest.raises(SampleError, match="not a recognised image format"):
        DECODE({"__key__": "ps", "jpg": eps})


# -- checkpoints -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "step_00000001.pt"
    checkpoint.save_atomic({"step": 1, "recipe": {"name": "x"},
                            "target_encoder": {"w": torch.arange(64.0)}}, path)
    return path.read_bytes()


def load_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    with bounded():
        try:
            state = checkpoint.load(path)
        except JepakitError as exc:
            one_line(exc)
            return
    assert isinstance(state, dict)


@FUZZ
@given(noise=st.binary(max_size=600), cut=st.integers(0, 4000),
       flips=st.lists(st.integers(0, 40000), max_size=6))
def test_checkpoints_random_truncated_and_flipped(noise, cut, flips, saved, tmp_path, empty_cwd):
    path = tmp_path / "step_00000002.pt"
    load_bytes(path, noise)
    load_bytes(path, saved[:cut])
    load_bytes(path, flip(saved, flips))


def test_a_checkpoint_that_pickles_code_is_refused(tmp_path, empty_cwd):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(JepakitError, match="must not run code"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
    torch.save([1, 2], path)
    with pytest.raises(JepakitError, match="holds a list"):
        checkpoint.load(path)
