"""The strict tar reader: what tarfile writes reads back; damage always raises."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from jepakit.data.tar import TarCorrupt, members, open_stream, split_key


def make_tar(files: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


FILES = {"a/0001.jpg": b"x" * 700, "a/0001.cls": b"3", "a/0002.jpg": b"", "a/0002.cls": b"1"}


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reads_what_tarfile_writes_including_long_names(fmt):
    files = {**FILES, "d" * 120 + "/k.png": b"png", "é/ü.txt": "ö".encode()}
    if fmt == tarfile.USTAR_FORMAT:
        files = FILES
    assert dict(members(io.BytesIO(make_tar(files, fmt)))) == files


def test_gzip_shards_are_undone():
    data = gzip.compress(make_tar(FILES))
    assert dict(members(open_stream(io.BytesIO(data)))) == FILES


@pytest.mark.parametrize("cut", [512 + 512, 700, 100])
def test_truncation_anywhere_raises(cut):
    data = make_tar(FILES)
    with pytest.raises(TarCorrupt, match="truncated"):
        list(members(io.BytesIO(data[:cut])))


def test_corrupt_header_raises_instead_of_ending_quietly():
    data = bytearray(make_tar(FILES))
    data[512 + 1024 + 10] ^= 0xFF  # inside the second member's header
    with pytest.raises(TarCorrupt, match="checksum"):
        list(members(io.BytesIO(bytes(data))))


def test_split_key_follows_webdataset():
    assert split_key("dir/abc.seg.PNG") == ("dir/abc", "seg.png")
    assert split_key("dir.v2/abc.jpg") == ("dir.v2/abc", "jpg")
    assert split_key("noext") is None
