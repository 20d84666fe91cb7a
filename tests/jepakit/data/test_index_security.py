"""A shard index is data: its entries name files next to it, never commands or other places."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepakit.cli import main
from jepakit.data.index import FORMAT, ShardIndex, read_index, shard_urls
from jepakit.errors import JepakitError


def write_index(folder: Path, *names: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 1,
                                "shards": [{"name": n, "samples": 2} for n in names]}))
    return path


def test_the_reproduced_pipe_attack_runs_nothing(tmp_path, tiny_recipe, capsys):
    """The issue's attack: an index entry ``pipe:touch FILE; ...`` made every training
    process run the command. Now the run stops before any data is opened."""
    victim = tmp_path / "pwned"
    index = write_index(tmp_path / "shards", f"pipe:touch {victim}; cat /dev/null")
    rc = main(["run", str(tiny_recipe), "data.name=webdataset", f"data.params.urls={index}",
               "train.steps=1", "monitors.aim=false", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2
    assert not victim.exists()
    assert "refusing shard entry" in err and str(index) in err and "pipe:touch" in err
    assert len(err.strip().splitlines()) == 1


def test_evaluation_data_refuses_it_too(tmp_path):
    from jepakit.eval.data import resolve_pair

    victim = tmp_path / "pwned"
    index = write_index(tmp_path / "shards", f"pipe:touch {victim}")
    with pytest.raises(JepakitError, match="refusing shard entry"):
        resolve_pair(str(index))
    assert not victim.exists()


@pytest.mark.parametrize("name, why", [
    ("pipe:cat /etc/passwd", "URL or command"),
    ("http://evil.example/x.tar", "URL or command"),
    ("file:shard.tar", "URL or command"),
    ("/etc/passwd", "absolute path"),
    ("../outside.tar", "outside the index"),
    ("sub/../../outside.tar", "outside the index"),
    ("shard-{000..999}.tar", "not a plain file name"),
    ("a.tar; rm -rf ~", "not a plain file name"),
    ("-o.tar", "not a plain file name"),
    ("", "not a plain file name"),
])
def test_unsafe_names_are_refused_naming_index_and_entry(tmp_path, name, why):
    index = write_index(tmp_path, "shard-000000.tar", name)
    with pytest.raises(JepakitError) as info:
        read_index(str(index))
    message = str(info.value)
    assert str(index) in message and why in message and "\n" not in message


@pytest.mark.parametrize("entry", [
    "shard.tar", {"name": 3, "samples": 2}, {"name": "a.tar", "samples": "2"},
    {"name": "a.tar", "samples": -1}, {"name": "a.tar"}, {"name": "a.tar", "samples": True},
])
def test_malformed_entries_are_one_line_errors(tmp_path, entry):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"format": FORMAT, "shards": [entry]}))
    with pytest.raises(JepakitError, match="shard entry 0"):
        read_index(str(path))


def test_plain_names_resolve_next_to_a_local_or_remote_index(tmp_path):
    index = ShardIndex(shards=[{"name": "shard-000000.tar", "samples": 1},
                               {"name": "part_1/s-1.tar.gz", "samples": 1}])
    assert shard_urls("https://host/data/train/index.json", index) == [
        "https://host/data/train/shard-000000.tar", "https://host/data/train/part_1/s-1.tar.gz"]
    assert shard_urls(f"{tmp_path}/index.json", index)[0] == f"{tmp_path}/shard-000000.tar"
    assert shard_urls("index.json", index)[0] == "./shard-000000.tar"


def test_an_index_built_in_code_is_checked_when_resolved():
    index = ShardIndex(shards=[{"name": "pipe:true", "samples": 1}])
    with pytest.raises(JepakitError, match="refusing"):
        shard_urls("/data/index.json", index)
