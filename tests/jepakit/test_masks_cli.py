"""``jepakit masks show|stats``: pictures and coverage figures of a recipe's masker,
and one-line errors for bad recipes and unwritable outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from jepakit.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "recipes" / "ijepa_tiny.yaml")
GRID_14 = "encoder.params.image_size=56"  # patch 4: a 14x14 grid, as ViT-H/14 at 224 px
FAST = ["--batches", "8", "--batch-size", "32"]


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jepakit: error:")
    return lines[0]


def _row(out: str, which: str) -> tuple[float, float, str]:
    match = re.search(rf"^\s*{which}\s+([\d.]+)\s+([\d.]+)\s+(.*)$", out, re.MULTILINE)
    assert match, out
    return float(match.group(1)), float(match.group(2)), match.group(3)


def test_stats_corrected_covers_every_patch(capsys):
    assert main(["masks", "stats", TINY, GRID_14, *FAST]) == 0
    out = capsys.readouterr().out
    assert "masker multiblock (mode corrected) on a 14x14 grid: 256 images" in out
    assert re.search(r"tokens per image: context [\d.]+ .*targets [\d.]+ in 4 mask", out)
    for which in ("context", "target"):
        low, high, never = _row(out, which)
        assert 0 < low <= high <= 1
        assert never == "none"


def test_stats_official_never_covers_last_row_and_column(capsys):
    assert main(["masks", "stats", TINY, GRID_14, "masker.params.mode=official", *FAST]) == 0
    out = capsys.readouterr().out
    assert "(mode official)" in out
    for which in ("context", "target"):
        low, _, never = _row(out, which)
        assert low == 0
        assert never == "27: row 13, column 13"


def test_stats_writes_the_heatmap(tmp_path, capsys):
    path = tmp_path / "coverage.png"
    assert main(["masks", "stats", TINY, *FAST, "--heatmap", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height > 100


def test_show_draws_images_context_and_targets(tmp_path, capsys):
    path = tmp_path / "masks.png"
    assert main(["masks", "show", TINY, "masker.name=rasterized", "masker.params={}",
                 "--out", str(path), "--n", "3", "--panel", "64"]) == 0
    out = capsys.readouterr().out
    assert "3 images, masker rasterized, grid 8x8" in out
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 3 * 64 and image.height > 3 * 64
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # pictures, not a blank sheet


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["masks", "show", TINY, "--out", "/nonexistent-dir/m.png"],
         "cannot write /nonexistent-dir/m.png: folder /nonexistent-dir does not exist"),
        (["masks", "stats", TINY, "--heatmap", "/nonexistent-dir/h.png"],
         "folder /nonexistent-dir does not exist"),
        (["masks", "show", "no-such-recipe.yaml", "--out", "m.png"], "recipe file not found"),
        (["masks", "stats", TINY, "masker.params.mode=upstream"], "masker.params.mode"),
        (["masks", "stats", TINY, "masker.name=multiblok"], "did you mean 'multiblock'"),
        (["masks", "show", TINY, "--out", "m.png", "--n", "0"], "--n must be > 0"),
        (["masks", "stats", TINY, "masker.params.mode=official", "masker.params.min_keep=30"],
         "upstream would loop forever"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in _one_line_error(capsys.readouterr().err)


def test_output_that_is_a_directory_is_refused(tmp_path, capsys):
    assert main(["masks", "show", TINY, "--out", str(tmp_path)]) == 2
    assert "it is a directory" in _one_line_error(capsys.readouterr().err)


def test_stats_reports_the_length_histogram_and_buckets(capsys):
    assert main(["masks", "stats", TINY, GRID_14, "masker.params.length_buckets=3", *FAST]) == 0
    out = capsys.readouterr().out
    buckets = re.search(r"buckets: context lengths \[([\d, ]+)\], target lengths \[([\d, ]+)\]", out)
    assert buckets, out
    context = {int(x) for x in buckets.group(1).split(",")}
    drawn = re.search(r"lengths: context (\d) distinct: ([^;]+);", out)
    assert drawn, out
    assert {int(x) for x in re.findall(r"(\d+) \(\d+%\)", drawn.group(2))} <= context
    shapes = re.search(r"shapes: (\d+) distinct", out)
    assert shapes and 1 <= int(shapes.group(1)) <= 9

    assert main(["masks", "stats", TINY, GRID_14, *FAST]) == 0
    out = capsys.readouterr().out
    assert "buckets:" not in out and re.search(r"lengths: context \d+ distinct", out)


VJEPA = ["masker.name=vjepa_multiblock", "masker.params={}"]


def test_stats_on_a_video_grid(capsys):
    assert main(["masks", "stats", TINY, *VJEPA, "--grid", "4", "8", "8", *FAST]) == 0
    out = capsys.readouterr().out
    assert "masker vjepa_multiblock on a 4x8x8 grid: 256 clips" in out
    assert re.search(r"tokens per clip: context [\d.]+ .*targets [\d.]+ in 2 mask", out)
    per_mask = re.search(r"per mask: context ([\d.]+), ([\d.]+); targets ([\d.]+), ([\d.]+)", out)
    assert per_mask, out
    short_context, long_context, short_target, long_target = map(float, per_mask.groups())
    assert long_context < short_context and long_target > short_target  # 2 x 0.7 vs 8 x 0.15
    assert "never covered (frame, row, column)" in out
    for which in ("context", "target"):
        low, high, never = _row(out, which)
        assert 0 < low <= high <= 1 and never == "none"


def test_show_draws_a_few_frames_of_each_clip(tmp_path, capsys):
    path = tmp_path / "clips.png"
    assert main(["masks", "show", TINY, *VJEPA, "--grid", "4", "8", "8", "--out", str(path),
                 "--n", "2", "--panel", "32", "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "2 clips, masker vjepa_multiblock, grid 4x8x8" in out
    with Image.open(path) as image:
        assert image.width > 2 * 3 * 32  # 2 clips of 3 frames side by side
        assert image.height > 5 * 32  # image, then context and target per configuration


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grid", "4", "8", "8"], "masker 'multiblock' works on 2-D patch grids, got the 3-D "
                                    "grid 4x8x8"),
        (["--grid", "2", "8", "8", "8"], "--grid takes 2 (rows, columns) or 3"),
        (["--grid", "0", "8"], "positive sides, got 0 8"),
    ],
)
def test_grid_errors_are_one_line(argv, message, capsys):
    assert main(["masks", "stats", TINY, *argv]) == 2
    assert message in _one_line_error(capsys.readouterr().err)
