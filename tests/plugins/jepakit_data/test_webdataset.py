"""The webdataset plugin: round trip, bad data, exact and resampled splitting, resume."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from jepakit_data.webdataset import TarShards, WebDatasetConfig, make_webdataset
from shardkit import KeyDecoder, as_worker, clean_tally, image_folder, labelled_shards, write_image  # noqa: F401 (clean_tally: autouse fixture)

from jepakit.data.badsamples import tally
from jepakit.data.loader import build_loader
from jepakit.data.shards import make_shards
from jepakit.errors import ConfigError, JepakitError


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """12 labelled images (3 classes) in 6 shards of 2."""
    return labelled_shards(tmp_path_factory.mktemp("wds"))


def dataset(urls, **params) -> TarShards:
    config = WebDatasetConfig(urls=str(urls), **params)
    return make_webdataset(config, image_size=8, in_chans=3, seed=0)


def keyed(shards: Path, **params) -> TarShards:
    """The shards with samples decoded to their keys."""
    ds = dataset(shards / "index.json", **params)
    return TarShards(ds.units, KeyDecoder(), ds.options, seed=0, expected=ds.expected)


def test_round_trip_counts_labels_and_shapes(shards):
    samples = list(dataset(shards / "index.json", shuffle_buffer=4))
    assert len(samples) == 12
    assert all(img.shape == (3, 8, 8) and img.dtype == torch.float32 for img, _ in samples)
    assert collections.Counter(label for _, label in samples) == {0: 4, 1: 4, 2: 4}
    stats = tally.drain()
    assert stats is not None and (stats.good, stats.bad) == (12, 0)


def test_brace_pattern_and_pipe_urls_work(shards):
    pattern = str(shards / "shard-{000000..000005}.tar")
    assert len(list(dataset(pattern))) == 12
    piped = [f"pipe:cat {p}" for p in sorted(shards.glob("*.tar"))]
    assert len(list(dataset(piped[0]))) == 2


def test_corrupt_jpeg_and_truncated_shard_are_skipped_and_counted(tmp_path):
    src = tmp_path / "src"
    image_folder(src, per_class=4)
    make_shards(src, tmp_path / "out", shard_size=4, progress=False)  # 3 shards of 4
    out = tmp_path / "out"
    # A corrupt JPEG: rewrite shard 0 with one image's bytes replaced.
    import webdataset as wds

    from jepakit.data import tar

    members = list(tar.members(open(out / "shard-000000.tar", "rb")))
    with open(out / "shard-000000.tar", "wb") as f, wds.TarWriter(f, encoder=False) as w:
        groups: dict[str, dict] = {}
        for name, data in members:
            key, ext = tar.split_key(name)
            groups.setdefault(key, {"__key__": key})[ext] = data
        bad_key = sorted(groups)[0]
        image_ext = next(e for e in groups[bad_key] if e in ("jpg", "png"))
        groups[bad_key][image_ext] = b"\xff\xd8\xff broken"
        for sample in groups.values():
            w.write(sample)
    # A truncated shard: shard 2 cut in the middle of its third sample.
    data = (out / "shard-000002.tar").read_bytes()
    (out / "shard-000002.tar").write_bytes(data[: len(data) // 2 + 100])

    samples = list(dataset(out / "index.json"))
    stats = tally.drain()
    assert stats is not None
    lost_in_truncation = next(e.count for e in stats.events if "shard-000002" in e.source)
    assert len(samples) == 12 - 1 - lost_in_truncation
    assert stats.good == len(samples) and stats.bad == 1 + lost_in_truncation
    reasons = {e.source.rsplit("/", 1)[-1]: (e.key, e.reason) for e in stats.events}
    assert reasons["shard-000000.tar"][0] == bad_key
    assert "undecodable" in reasons["shard-000000.tar"][1]
    assert "truncated" in reasons["shard-000002.tar"][1]


def test_truncated_shard_without_index_still_counts(tmp_path, shards):
    data = (shards / "shard-000001.tar").read_bytes()
    (tmp_path / "s.tar").write_bytes(data[:1024])  # cut at a member boundary
    with pytest.raises(JepakitError, match="no sample could be read"):
        list(dataset(tmp_path / "s.tar"))  # the one partial sample is not yielded
    stats = tally.drain()
    assert stats is not None and stats.bad >= 1
    assert "end-of-archive" in stats.events[0].reason


def test_missing_local_shard_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        dataset(tmp_path / "shard-{000000..000002}.tar")
    with pytest.raises(ConfigError, match="empty"):
        make_webdataset(WebDatasetConfig(), image_size=8)


def test_exact_mode_two_ranks_two_workers_see_every_sample_once(shards, monkeypatch):
    for epoch in range(2):
        seen: list[str] = []
        per_process = []
        for rank in range(2):
            for worker in range(2):
                ds = keyed(shards, mode="exact", shuffle_buffer=3)
                ds.load_state_dict({"epoch": epoch, "position": 0})
                with as_worker(monkeypatch, rank, 2, worker, 2):
                    got = list(ds)
                per_process.append(got)
                seen += got
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 12, f"epoch {epoch}"
        assert all(per_process)


def test_exact_mode_with_too_few_shards_fails_clearly(shards, monkeypatch):
    ds = keyed(shards, mode="exact")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(JepakitError, match=r"6 < 4 rank\(s\) x 2 worker"):
        ds.check_workers(2)
    with as_worker(monkeypatch, 0, 4, 0, 2), pytest.raises(JepakitError, match="exact epochs"):
        next(iter(ds))


def test_resampled_mode_never_leaves_a_rank_empty(shards, monkeypatch):
    # 6 shards for 4 ranks x 3 workers: exact mode would starve; resampled gives everyone data.
    for rank in range(4):
        for worker in range(3):
            ds = keyed(shards, mode="resampled", epoch_samples=9)
            with as_worker(monkeypatch, rank, 4, worker, 3):
                got = list(ds)
            assert len(got) == 3  # ceil(9 / 3 workers)


def test_auto_mode_is_resampled_on_several_ranks(shards, monkeypatch):
    ds = keyed(shards)
    assert ds.mode(world=1) == "exact" and ds.mode(world=2) == "resampled"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert ds.samples_per_epoch(2) == 6  # the index's 12 samples over 2 ranks


def test_state_dict_resumes_the_stream_exactly(shards):
    full = list(keyed(shards, shuffle_buffer=5))
    ds = keyed(shards, shuffle_buffer=5)
    it = iter(ds)
    head = [next(it) for _ in range(5)]
    state = ds.state_dict()
    resumed = keyed(shards, shuffle_buffer=5)
    resumed.load_state_dict(state)
    assert head + list(resumed) == full
    assert resumed.state_dict() == {"epoch": 1, "position": 0}


def test_loader_with_workers_carries_bad_counts(tmp_path):
    src = tmp_path / "src"
    image_folder(src, per_class=4)
    make_shards(src, tmp_path / "out", shard_size=3, progress=False)  # 4 shards
    (tmp_path / "out" / "shard-000003.tar").write_bytes(b"\0" * 10)  # all 3 samples lost
    ds = dataset(tmp_path / "out" / "index.json", mode="exact")

    loader = build_loader(ds, batch_size=1, num_workers=2, seed=0)
    good = bad = 0
    for _ in range(2):  # two epochs through persistent workers
        for batch in loader:
            if batch.data_stats is not None:
                good += batch.data_stats.good
                bad += batch.data_stats.bad
    assert good == 2 * 9
    assert bad in (3, 6)  # the second epoch's count may ride on a batch not yet drawn
    state = loader.state_dict()
    assert state is not None


def test_imagefolder_plugin_labels_and_flat_folders(tmp_path, registry):
    image_folder(tmp_path / "classes", per_class=2)
    (tmp_path / "classes" / "b" / "broken.png").write_bytes(b"nope")
    ds = registry.create("dataset", "imagefolder", {"root": str(tmp_path / "classes")},
                         image_size=8, in_chans=1, seed=0)
    samples = list(ds)
    assert sorted(label for _, label in samples) == [0, 0, 1, 1, 2, 2]
    assert samples[0][0].shape == (1, 8, 8)
    stats = tally.drain()
    assert stats is not None and stats.bad == 1 and stats.events[0].key == "b/broken.png"
    for i in range(3):
        write_image(tmp_path / "flat" / f"{i}.png", seed=i)
    flat = registry.create("dataset", "imagefolder", {"root": str(tmp_path / "flat")},
                           image_size=8, in_chans=3, seed=0)
    assert [label for _, label in flat] == [-1, -1, -1]
    with pytest.raises(ConfigError, match="no such folder"):
        registry.create("dataset", "imagefolder", {"root": str(tmp_path / "nope")},
                        image_size=8, in_chans=3, seed=0)


def test_stateful_loader_resumes_mid_epoch_with_workers(shards):
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader():
        return StatefulDataLoader(keyed(shards, mode="exact", shuffle_buffer=3), batch_size=2,
                                  num_workers=2, collate_fn=list)

    full = [key for batch in loader() for key in batch]
    first = loader()
    it = iter(first)
    head = [key for _ in range(3) for key in next(it)]
    state = first.state_dict()
    del it
    second = loader()
    second.load_state_dict(state)
    rest = [key for batch in second for key in batch]
    assert sorted(head + rest) == sorted(full) and len(head + rest) == 12


def test_worker_errors_reach_the_user_as_one_line(tmp_path):
    from jepakit.data.loader import infinite

    src = tmp_path / "src"
    for i in range(4):
        (src / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (src / f"{i}.png").write_bytes(b"not a png")
    from jepakit_data.imagefolder import ImageFolderConfig, make_imagefolder

    ds = make_imagefolder(ImageFolderConfig(root=str(src), mode="resampled", bad_check_after=3),
                          image_size=8)
    from torchdata.stateful_dataloader import StatefulDataLoader

    loader = StatefulDataLoader(ds, batch_size=2, num_workers=1, collate_fn=list)
    with pytest.raises(JepakitError) as info:
        next(infinite(loader))
    assert str(info.value).startswith("none of the first 3 samples could be decoded")


def test_no_readable_sample_names_the_shards_and_reasons(tmp_path):
    (tmp_path / "a.tar").write_bytes(b"not a tar at all" * 64)
    (tmp_path / "b.tar").write_bytes(bytes(100))  # cut inside the first header
    config = WebDatasetConfig(urls=[str(tmp_path / "a.tar"), str(tmp_path / "b.tar")],
                              shuffle_buffer=0)
    ds = make_webdataset(config, image_size=8)
    with pytest.raises(JepakitError) as info:
        list(ds)
    message = str(info.value)
    assert "no sample could be read from 2 of 2" in message
    assert "a.tar" in message and "b.tar" in message
    assert "1 x TarCorrupt: bad header checksum at byte N" in message
    assert "1 x TarCorrupt: ends at byte N without an end-of-archive block" in message
    assert "\n" not in message


def test_no_readable_sample_through_the_loader_is_one_line(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.tar").write_bytes(b"\x00garbage" * 100)
    ds = dataset(str(tmp_path / "{a,b}.tar"))
    from jepakit.data.loader import Epochs

    with pytest.raises(JepakitError, match="no sample could be read from 2 of 2") as info:
        next(Epochs(build_loader(ds, batch_size=2, num_workers=1, seed=0)))
    assert "fewer samples than one batch" not in str(info.value)
    assert "\n" not in str(info.value)


def test_brace_list_override_reads_as_webdataset_does(shards, tiny_recipe):
    from jepakit.recipe import load_recipe

    urls = f"{{{shards}/shard-000000.tar,{shards}/shard-000003.tar}}"
    recipe = load_recipe(tiny_recipe, ["data.name=webdataset", f"data.params.urls={urls}"])
    assert recipe.data.params["urls"] == urls
    assert len(list(dataset(recipe.data.params["urls"]))) == 4
    with pytest.raises(ConfigError, match="got {'a': 1}"):  # a real mapping stays one
        load_recipe(tiny_recipe, ["data.name=webdataset", "data.params.mean={a: 1}"])
