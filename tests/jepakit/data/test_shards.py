"""``jepakit shards make``: folders and Fashion-MNIST to shards, and its user errors."""

from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np

from jepakit.cli import main
from jepakit.data import tar
from jepakit.data.shards import make_shards

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "jepakit_data"))
from shardkit import image_folder, write_image  # noqa: E402


def read_all(out: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob("*.tar")):
        with open(shard, "rb") as f:
            for name, data in tar.members(f):
                key, ext = tar.split_key(name)
                samples.setdefault(key, {})[ext] = data
    return samples


def test_folder_round_trip_with_broken_files(tmp_path, capsys):
    src = image_folder(tmp_path / "src", classes=("cat", "dog"), per_class=5)
    (src / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    data = (src / "cat" / "1.jpg").read_bytes()
    (src / "cat" / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert main(["shards", "make", str(src), str(tmp_path / "out"), "--shard-size", "4",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "Wrote 10 samples in 3 shard(s), 2 classes" in out.out
    assert "skipped 2 bad input(s)" in out.out
    assert "broken.jpg" in out.err and "cut.jpg" in out.err
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["classes"] == ["cat", "dog"] and index["num_samples"] == 10
    assert [s["samples"] for s in index["shards"]] == [4, 4, 2]
    assert index["pattern"] == "shard-{000000..000002}.tar"
    assert {Path(s["path"]).name for s in index["skipped"]} == {"broken.jpg", "cut.jpg"}
    samples = read_all(tmp_path / "out")
    assert len(samples) == 10
    assert sorted(int(s["cls"]) for s in samples.values()) == [0] * 5 + [1] * 5
    assert {ext for s in samples.values() for ext in s} == {"cls", "jpg", "png"}


def test_flat_folder_gives_unlabelled_shards(tmp_path):
    for i in range(3):
        write_image(tmp_path / "flat" / f"{i}.jpg", seed=i)
    index = make_shards(tmp_path / "flat", tmp_path / "out", progress=False)
    assert index.classes == [] and index.num_samples == 3
    assert all("cls" not in s for s in read_all(tmp_path / "out").values())


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 7), ("t10k", 3)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    index = make_shards(tmp_path, tmp_path / "train", shard_size=3, progress=False)
    assert index.num_samples == 7 and index.classes[0] == "T-shirt/top"
    test = make_shards(tmp_path, tmp_path / "test", fmt="fashion-mnist", split="test",
                       progress=False)
    assert test.num_samples == 3
    labels = sorted(int(s["cls"]) for s in read_all(tmp_path / "train").values())
    assert labels == list(range(7))


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.tar").write_text("x")
    write_image(tmp_path / "ok" / "a.png", seed=0)
    cases = {
        "no such file or folder": [str(tmp_path / "missing"), str(tmp_path / "o1")],
        "no images found": [str(tmp_path / "empty"), str(tmp_path / "o2")],
        "cannot write to": [str(tmp_path / "ok"), str(tmp_path / "file" / "sub")],
        "is not a folder": [str(tmp_path / "ok"), str(tmp_path / "file")],
        "not empty; pass --overwrite": [str(tmp_path / "ok"), str(tmp_path / "full")],
    }
    for message, args in cases.items():
        assert main(["shards", "make", *args, "--no-progress"]) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["shards", "make", str(tmp_path / "ok"), str(tmp_path / "full"), "--overwrite",
                 "--no-progress"]) == 0
    assert not (tmp_path / "full" / "shard-000000.tar").stat().st_size == 0


def test_workers_give_byte_identical_shards_and_index(tmp_path):
    src = image_folder(tmp_path / "src", classes=("a", "b", "c"), per_class=6)
    (src / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    write_image(src / "stray.png", seed=9)  # outside the class folders: skipped
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert main(["shards", "make", str(src), str(out), "--shard-size", "5",
                     "--workers", str(workers), "--no-progress"]) == 0
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    assert sorted(outputs[0]) == ["index.json"] + [f"shard-{i:06d}.tar" for i in range(4)]
    index = json.loads(outputs[0]["index.json"])
    assert index["num_samples"] == 18 and len(index["skipped"]) == 2


def test_workers_must_be_positive(tmp_path, capsys):
    src = image_folder(tmp_path / "src", per_class=1)
    assert main(["shards", "make", str(src), str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
