"""Video shards: written from a folder, read as clips, bad videos counted, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import webdataset as wds
from jepakit_data.video_webdataset import VideoWebDatasetConfig, make_video_webdataset
from shardkit import clean_tally, write_image  # noqa: F401 (clean_tally: autouse fixture)
from videokit import frame_numbers, indexed_video, video_folder

from jepakit.data.badsamples import tally
from jepakit.data.index import read_index
from jepakit.data.shards import make_shards
from jepakit.errors import ConfigError, JepakitError


def dataset(urls, *, size: int = 16, chans: int = 1, frames: int | None = 4, **params):
    config = VideoWebDatasetConfig(urls=str(urls), **params)
    return make_video_webdataset(config, image_size=size, in_chans=chans, seed=0,
                                 num_frames=frames)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """4 labelled videos (classes a, b; mp4 and webm; 12 and 11 frames) in 2 shards, plus
    a corrupt and a truncated file that the writer skips."""
    root = tmp_path_factory.mktemp("videos")
    src = video_folder(root / "src", per_class=2)
    (src / "a" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really")
    cut = indexed_video(20, ext="mkv")
    (src / "b" / "cut.mkv").write_bytes(cut[: len(cut) // 3])
    make_shards(src, root / "out", shard_size=2, progress=False)
    return root / "out"


def test_shards_make_auto_detects_videos_skips_broken_ones_and_records_the_reader(shards):
    index = read_index(str(shards / "index.json"))
    assert index.num_samples == 4 and len(index.shards) == 2
    assert index.classes == ["a", "b"] and index.dataset == "video_webdataset"
    assert sorted(Path(s["path"]).name for s in index.skipped) == ["broken.mp4", "cut.mkv"]


def test_round_trip_gives_labelled_clips_of_the_encoders_frames(shards):
    samples = list(dataset(shards / "index.json", size=8, chans=3, frames=4))
    assert len(samples) == 4
    assert sorted(label for _, label in samples) == [0, 0, 1, 1]
    for clip, _ in samples:
        assert clip.shape == (3, 4, 8, 8) and clip.dtype == torch.float32
    stats = tally.drain()
    assert stats is not None and (stats.good, stats.bad) == (4, 0)


def unit_scale(**params) -> dict:
    """Normalisation that leaves pixels in [0, 1], so frame numbers can be read back."""
    return {"mean": (0.0,), "std": (1.0,), "evaluation": True, **params}


def test_frame_step_and_clips_per_video_pick_the_right_frames(shards):
    for clips, _ in dataset(shards / "index.json", frames=3,
                            **unit_scale(frame_step=4, clips_per_video=2)):
        assert clips.shape == (2, 1, 3, 16, 16)
        first, last = (frame_numbers(c[0], unit=255) for c in clips)
        assert first == [0, 4, 8]
        assert last[-1] in (10, 11) and [b - a for a, b in zip(last, last[1:])] == [4, 4]


def test_a_target_fps_sets_the_step(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "v.mp4").write_bytes(indexed_video(30, fps=24))
    make_shards(src, tmp_path / "out", progress=False)
    ((clip, label),) = list(dataset(tmp_path / "out" / "index.json", frames=4,
                                    **unit_scale(fps=8)))
    assert label == -1  # a flat folder: unlabelled
    numbers = frame_numbers(clip[0], unit=255)
    assert [b - a for a, b in zip(numbers, numbers[1:])] == [3, 3, 3]


def test_training_clips_are_contiguous_at_the_step(shards):
    for clip, _ in dataset(shards / "index.json", frames=3, mean=(0.0,), std=(1.0,),
                           frame_step=2, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)):
        numbers = frame_numbers(clip[0], unit=255)
        assert [b - a for a, b in zip(numbers, numbers[1:])] == [2, 2]


def rewrite(shard: Path, change) -> None:
    """Rewrite a shard with ``change(sample)`` applied to each sample."""
    from jepakit.data import tar

    groups: dict[str, dict] = {}
    with open(shard, "rb") as f:
        for name, data in tar.members(f):
            key, ext = tar.split_key(name)
            groups.setdefault(key, {"__key__": key})[ext] = data
    with open(shard, "wb") as f, wds.TarWriter(f, encoder=False) as writer:
        for sample in groups.values():
            writer.write(change(sample))


def test_corrupt_and_truncated_videos_in_shards_are_skipped_and_counted(shards, tmp_path):
    """Shards written by other tools are not checked: a bad video surfaces when read."""
    out = tmp_path / "out"
    out.mkdir()
    for shard in shards.glob("*.tar"):
        (out / shard.name).write_bytes(shard.read_bytes())
    (out / "index.json").write_text((shards / "index.json").read_text())
    state = {"n": 0}

    def damage(sample: dict) -> dict:
        state["n"] += 1
        ext = next(e for e in sample if e in ("mp4", "webm"))
        if state["n"] == 1:
            sample[ext] = b"\x1a\x45\xdf\xa3 garbage" * 10
        elif state["n"] == 3:
            sample[ext] = sample[ext][: len(sample[ext]) // 2]
        return sample

    for shard in sorted(out.glob("*.tar")):
        rewrite(shard, damage)
    samples = list(dataset(out / "index.json"))
    stats = tally.drain()
    assert len(samples) == 2
    assert stats is not None and (stats.good, stats.bad) == (2, 2)
    assert all("undecodable" in e.reason for e in stats.events)


def test_a_video_less_sample_is_counted(tmp_path):
    src = tmp_path / "src"
    write_image(src / "a.png", seed=0)
    make_shards(src, tmp_path / "out", progress=False)
    with pytest.raises(JepakitError, match="no sample could be read|no video"):
        list(dataset(tmp_path / "out" / "index.json", bad_check_after=1))


def test_training_clips_are_deterministic_and_resume_exactly(shards):
    """The start, crop and flip are keyed on the sample's slot: a run resumed from a saved
    position draws the clips the uninterrupted run drew."""
    def make():  # 2 frames 2 apart: 8 or 9 possible starts per video
        return dataset(shards / "index.json", shuffle_buffer=2, frames=2, frame_step=2)

    def run() -> list[torch.Tensor]:
        return [c for c, _ in make()]

    full = run()
    assert len(full) == 4 and all(torch.equal(a, b) for a, b in zip(full, run()))
    first = make()
    it = iter(first)
    next(it), next(it)
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    rest = [c for c, _ in resumed]
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(rest, full[2:]))


def test_configuration_mistakes_are_one_line_errors(shards):
    urls = shards / "index.json"
    with pytest.raises(ConfigError, match="frames_per_clip=8.*num_frames=4"):
        dataset(urls, frames=4, frames_per_clip=8)
    with pytest.raises(ConfigError, match="clips_per_video=2 needs data.params.evaluation"):
        dataset(urls, clips_per_video=2)
    with pytest.raises(ConfigError, match="in_chans=2"):
        dataset(urls, chans=2)
    with pytest.raises(ConfigError, match="mean has 3 values"):
        dataset(urls, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ConfigError, match="views"):
        make_video_webdataset(VideoWebDatasetConfig(urls=str(urls)), image_size=8,
                              views=[object()])
    with pytest.raises(ConfigError, match="urls is empty"):
        dataset("")
    assert next(iter(dataset(urls, frames=None, frames_per_clip=2)))[0].shape[1] == 2


def test_registered_with_the_engine_context(registry, shards):
    ds = registry.create("dataset", "video_webdataset", {"urls": str(shards / "index.json")},
                         image_size=8, in_chans=1, seed=0, num_frames=2)
    assert next(iter(ds))[0].shape == (1, 2, 8, 8)
