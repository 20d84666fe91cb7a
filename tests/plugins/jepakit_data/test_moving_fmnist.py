"""Moving Fashion-MNIST: deterministic clips of moving, bouncing items, via the command."""

from __future__ import annotations

import numpy as np
import pytest
from jepakit_data.moving_fmnist import ClipJob, render, trajectory
from jepakit_data.video_decode import decode_frames
from videokit import fake_fashion_mnist, video_folder

from jepakit.cli import main
from jepakit.data import tar
from jepakit.data.index import read_index


def shard_samples(folder) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(folder.glob("*.tar")):
        with open(shard, "rb") as f:
            for name, data in tar.members(f):
                key, ext = tar.split_key(name)
                samples.setdefault(key, {})[ext] = data
    return samples


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    return fake_fashion_mnist(tmp_path_factory.mktemp("fmnist"))


def make(idx, out, *args: str) -> int:
    return main(["shards", "make", str(idx), str(out), "--format", "moving-fashion-mnist",
                 "--no-progress", *args])


def test_command_writes_labelled_videos_identically_for_any_worker_count(idx, tmp_path, capsys):
    assert make(idx, tmp_path / "one", "--count", "6", "--frames", "5", "--shard-size", "4",
                "--workers", "1") == 0
    assert "data.name=video_webdataset" in capsys.readouterr().out
    assert make(idx, tmp_path / "two", "--count", "6", "--frames", "5", "--shard-size", "4",
                "--workers", "2") == 0
    for name in ("shard-000000.tar", "shard-000001.tar", "index.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    index = read_index(str(tmp_path / "one" / "index.json"))
    assert index.num_samples == 6 and index.dataset == "video_webdataset"
    assert index.classes[0] == "T-shirt/top"
    samples = shard_samples(tmp_path / "one")
    assert len(samples) == 6
    for sample in samples.values():
        assert 0 <= int(sample["cls"]) <= 9
        frames = decode_frames(sample["mp4"], list(range(5)), gray=True)
        assert frames.shape == (5, 64, 64, 1)
        assert frames.float().mean() > 5  # the items are there
        assert not np.array_equal(frames[0].numpy(), frames[-1].numpy())  # and they move


def test_seed_and_split_change_the_clips(idx, tmp_path):
    for name, extra in (("a", []), ("b", ["--seed", "1"]), ("test", ["--split", "test"])):
        assert make(idx, tmp_path / name, "--count", "3", "--frames", "2", *extra) == 0
    a, b, test = (shard_samples(tmp_path / n) for n in ("a", "b", "test"))
    assert all(a[k]["mp4"] != b[k]["mp4"] for k in a)
    # the fake test items are dimmer (100-150) than the train items (200-255)
    brightest = {name: max(int(decode_frames(s["mp4"], [0], gray=True).max())
                           for s in samples.values())
                 for name, samples in (("train", a), ("test", test))}
    assert brightest["train"] > 190 and brightest["test"] < 170


def test_count_defaults_to_the_split_and_mistakes_exit_2(idx, tmp_path, capsys):
    assert make(idx, tmp_path / "all", "--split", "test", "--frames", "2") == 0
    assert read_index(str(tmp_path / "all" / "index.json")).num_samples == 5
    assert make(idx, tmp_path / "bad", "--frames", "0") == 2
    assert "--frames" in capsys.readouterr().err
    assert make(tmp_path / "nowhere", tmp_path / "none") == 2


def test_label_is_the_first_items_class_and_items_bounce():
    rng = np.random.default_rng(0)
    path = trajectory(rng, 200, 36)
    assert path.min() >= 0 and path.max() <= 36
    assert len(np.unique(path[:, 0])) > 10  # it moves, across the whole room
    item = np.full((28, 28), 255, np.uint8)
    video = render(ClipJob(0, (item,), 3, seed=0, frames=4, fps=8))
    assert video.shape == (4, 64, 64)
    assert all((frame == 255).sum() == 28 * 28 for frame in video)  # one whole item per frame
    two = render(ClipJob(0, (item, item // 2), 3, seed=0, frames=4, fps=8))
    assert (two > 0).sum() > (video > 0).sum()  # a second item adds to the frame


def test_video_folder_through_the_command(tmp_path, capsys):
    src = video_folder(tmp_path / "src", per_class=1, frames=6)
    (src / "a" / "notes.txt").write_text("ignored")
    assert main(["shards", "make", str(src), str(tmp_path / "out"), "--format", "videofolder",
                 "--no-progress"]) == 0
    samples = shard_samples(tmp_path / "out")
    assert sorted((next(e for e in s if e != "cls"), int(s["cls"])) for s in samples.values()) \
        == [("mp4", 0), ("mp4", 1)]
    assert main(["shards", "make", str(tmp_path / "src" / "a" / "notes.txt"),
                 str(tmp_path / "o2"), "--format", "videofolder"]) == 2
    assert main(["shards", "make", str(tmp_path / "out"), "--format", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown format 'nonsense'" in err and "moving-fashion-mnist" in err
