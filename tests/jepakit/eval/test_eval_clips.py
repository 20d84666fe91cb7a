"""Evaluating a video encoder: clips cut by the run's dataset plugin from video shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from evalkit import ROOT, idx_folder
from jepakit_data.video_encode import encode_video

from jepakit.cli import main
from jepakit.data.shards import make_shards
from jepakit.errors import JepakitError
from jepakit.eval import features as F
from jepakit.eval.attentive import patch_tokens
from jepakit.eval.clips import ClipDecoding, with_clips_per_video
from jepakit.eval.controls import pixels_of
from jepakit.eval.data import holds_images, resolve
from jepakit.eval.protocols import prepare, run_linear, summary_line

FRAMES, SIZE = 8, 32
VIDEO_FRAMES = 12  # clips of FRAMES frames can start at 5 places


def _video(label: int, seed: int) -> bytes:
    """Class 0: a bright square that drifts right; class 1: a dim one that drifts down."""
    rng = np.random.default_rng(seed)
    frames = (rng.random((VIDEO_FRAMES, SIZE, SIZE)) * 40).astype(np.uint8)
    for t in range(VIDEO_FRAMES):
        if label == 0:
            frames[t, 8:20, 2 + t:14 + t] = 230
        else:
            frames[t, 2 + t:14 + t, 8:20] = 120
    return encode_video(frames, fps=8)


def _split(root: Path, per_class: int, seed: int) -> Path:
    src = root / "src"
    for label, name in enumerate(("right", "down")):
        (src / name).mkdir(parents=True)
        for i in range(per_class):
            (src / name / f"{i}.mp4").write_bytes(_video(label, seed + 100 * label + i))
    make_shards(src, root / "shards", shard_size=4, progress=False)
    return root / "shards"


@pytest.fixture(scope="module")
def video_data(tmp_path_factory) -> Path:
    """``train/`` (6 videos a class) and ``test/`` (3 a class) video shards."""
    root = tmp_path_factory.mktemp("video-eval")
    train, test = _split(root / "t1", 6, 0), _split(root / "t2", 3, 1000)
    (root / "data").mkdir()
    train.rename(root / "data" / "train")
    test.rename(root / "data" / "test")
    return root / "data"


@pytest.fixture(scope="module")
def video_recipe(video_data, tmp_path_factory) -> Path:
    """vjepa_tiny (one block) trained on the video shards: its data plugin cuts the clips."""
    path = tmp_path_factory.mktemp("recipe") / "clips.yaml"
    path.write_text(
        f"base: {ROOT / 'recipes' / 'vjepa' / 'vjepa_tiny.yaml'}\nname: clips_eval\n"
        "encoder: {params: {depth: 1}}\n"
        f"data: {{name: video_webdataset, params: {{urls: {video_data / 'train'}, "
        "frame_step: 1, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}\n")
    return path


def test_video_shards_hold_no_images_and_image_folders_do(video_data, tmp_path):
    assert not holds_images(resolve(video_data / "test"))
    assert holds_images(resolve(idx_folder(tmp_path / "idx")))


def test_features_are_the_encoder_on_the_plugins_evaluation_clips(video_data, video_recipe):
    source = F.from_recipe(video_recipe)
    clips = source.clips
    assert isinstance(clips, ClipDecoding) and clips.dataset == "video_webdataset"
    assert (clips.params["frame_step"], clips.params["mean"], clips.num_frames) == \
        (1, [0.5] * 3, FRAMES)
    assert "urls" not in clips.params and "evaluation" not in clips.params
    data = prepare(source, video_data, use_cache=False, progress=False)
    assert (len(data.train.y), len(data.test.y)) == (12, 6)
    assert data.train.bad_samples == 0

    test = resolve(video_data / "test")
    decode = source.clips.decoder(test)
    clips, labels = [], []
    for url in test.units:
        from jepakit.data import tar

        stream = wds.gopen(url)
        for raw in tar.Samples(tar.open_stream(stream)):
            clip, label = decode(raw)
            clips.append(clip)
            labels.append(label)
        stream.close()
    x = torch.stack(clips)
    assert x.shape == (6, 3, FRAMES, SIZE, SIZE)
    direct = F.encode(source.encoder, x)
    assert torch.equal(torch.tensor(labels), data.test.y)
    torch.testing.assert_close(data.test.x.float(), direct, atol=2e-3, rtol=2e-3)  # fp16 cache
    assert torch.equal(decode(raw)[0], decode(raw)[0])  # evaluation mode: no random draw


def test_clip_pixels_separate_the_classes_and_the_result_says_clips(video_data, video_recipe):
    source = pixels_of(F.from_recipe(video_recipe))
    assert source.description == f"raw pixels 3x{FRAMES}x{SIZE}x{SIZE}"
    data = prepare(source, video_data, use_cache=False, progress=False)
    assert data.train.x.shape == (12, 3 * FRAMES * SIZE * SIZE)
    result = run_linear(source, data, None)
    assert result["accuracy"] == 1.0 and result["sample_unit"] == "clips"
    assert "on 6 test clips" in summary_line({"protocol": "linear", **result})


def test_a_video_encoder_reads_images_as_images(video_recipe, tmp_path):
    source = F.from_recipe(video_recipe)
    data = prepare(source, idx_folder(tmp_path / "idx"), use_cache=False, progress=False)
    assert data.train.x.shape == (20, 96)
    assert run_linear(source, data, None)["sample_unit"] == "images"


def test_a_run_whose_dataset_reads_no_shards_cannot_cut_clips(video_data):
    source = F.from_recipe(ROOT / "recipes" / "vjepa" / "vjepa_tiny.yaml")  # synthetic_video
    with pytest.raises(JepakitError, match="'synthetic_video', which does not read shards.*unknown key"):
        prepare(source, video_data, use_cache=False, progress=False)


def test_the_cli_evaluates_a_video_encoder_with_its_pixel_control(video_data, video_recipe,
                                                                 tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["eval", "knn", "--random-init", str(video_recipe), "--data", str(video_data),
                 "--k", "3", "--no-cache", "--json", str(out), "--controls"]) == 0
    text = capsys.readouterr().out
    assert "3-NN: top-1" in text and "on 6 test clips" in text, text
    assert f"raw pixels 3x{FRAMES}x{SIZE}x{SIZE}" in text, text


def test_pixel_tokens_of_a_clip_are_its_frames_tokens_in_turn():
    clips = torch.randn(2, 3, 4, 8, 8)
    tokens = patch_tokens(clips, 4)
    assert tokens.shape == (2, 4 * 4, 3 * 16)
    for t in range(4):
        torch.testing.assert_close(tokens[:, 4 * t:4 * (t + 1)], patch_tokens(clips[:, :, t], 4))


def test_a_corrupt_video_is_counted_not_raised(video_recipe, video_data, tmp_path):
    shard = tmp_path / "mixed.tar"
    with wds.TarWriter(str(shard)) as sink:
        sink.write({"__key__": "broken", "mp4": b"\x00\x00\x00\x18ftypmp42 not a video",
                    "cls": b"0"})
        for i, label in enumerate((0, 1, 0, 1)):
            sink.write({"__key__": f"good{i}", "mp4": _video(label, 50 + i),
                        "cls": str(label).encode()})
    data = prepare(F.from_recipe(video_recipe), str(shard), video_data / "test",
                   use_cache=False, progress=False)
    assert (len(data.train.y), data.train.bad_samples) == (4, 1)


def test_several_clips_per_video_average_their_features(video_data, video_recipe):
    source = F.from_recipe(video_recipe)
    three = with_clips_per_video(source, 3)
    assert three.clips.clips_per_video == 3 and source.clips.clips_per_video == 1
    test = resolve(video_data / "test")
    data = prepare(three, video_data, use_cache=False, progress=False)
    assert data.test.x.shape == (6, 96)
    decode = three.clips.decoder(test)
    from jepakit.data import tar

    stream = wds.gopen(test.units[0])
    raw = next(iter(tar.Samples(tar.open_stream(stream))))
    stream.close()
    clips, _ = decode(raw)
    assert clips.shape == (3, 3, FRAMES, SIZE, SIZE)
    assert not torch.equal(clips[0], clips[2])  # spread over the video
    per_clip = F.encode(source.encoder, clips)  # [3, D]
    torch.testing.assert_close(F.encode(source.encoder, clips[None])[0], per_clip.mean(0))
    torch.testing.assert_close(data.test.x[0].float(), per_clip.mean(0), atol=2e-3, rtol=2e-3)
    result = run_linear(three, data, None)
    assert "on 6 test videos of 3 clips (" in summary_line({"protocol": "linear", **result})


def test_clips_per_video_is_for_video_encoders_on_video(video_recipe, tmp_path):
    with pytest.raises(JepakitError, match="--clips-per-video 2: .* reads images"):
        with_clips_per_video(F.from_recipe(ROOT / "recipes" / "ijepa_tiny.yaml"), 2)
    source = with_clips_per_video(F.from_recipe(video_recipe), 2)
    with pytest.raises(JepakitError, match="--clips-per-video 2: .* holds images"):
        prepare(source, idx_folder(tmp_path / "idx"), use_cache=False, progress=False)
