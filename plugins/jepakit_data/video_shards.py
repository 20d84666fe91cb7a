"""The ``videofolder`` shard format: class subfolders of videos (or a flat folder) -> shards.

As for images, every video is decoded once before it is written (every frame, so a
truncated file is caught here rather than in a training run), broken ones are skipped
and listed in the index, and the order is shuffled with the seed before writing (a
folder is sorted by class). The video bytes go into the shard unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jepakit.data.formats import is_image
from jepakit.data.shards import Sample, ShardFormat, Source
from jepakit.errors import JepakitError

from .video_decode import verify_video
from .video_webdataset import VIDEO_EXTENSIONS


def is_video(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS and not path.name.startswith(".")


def _videos(directory: Path, recursive: bool) -> list[Path]:
    found = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in found if p.is_file() and is_video(p)
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def scan_videos(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Class subfolders holding videos (labels by sorted name), else the videos in ``root``."""
    if not root.is_dir():
        raise JepakitError(f"{root}: no such folder")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    class_dirs = [d for d in subdirs if _videos(d, recursive=True)]
    if class_dirs:
        files: list[Path] = []
        labels: list[int] = []
        for label, d in enumerate(class_dirs):
            found = _videos(d, recursive=True)
            files += found
            labels += [label] * len(found)
        return files, labels, [d.name for d in class_dirs]
    files = _videos(root, recursive=False)
    if not files:
        raise JepakitError(f"{root}: no videos found (looked for {', '.join(VIDEO_EXTENSIONS)})")
    return files, None, []


def holds_videos(root: Path) -> bool:
    """For ``--format auto``: videos below ``root`` and no images."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return any(is_video(p) for p in files) and not any(is_image(p) for p in files)


def _video_item(job: tuple[int, str, int | None]) -> Sample | tuple[str, str]:
    i, path, label = job
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return path, f"unreadable: {exc}"
    problem = verify_video(data)
    if problem:
        return path, problem
    return Sample(f"{i:08d}", Path(path).suffix.lower().lstrip("."), data, label)


def open_video_folder(src: Path | None, options: Mapping[str, Any]) -> Source:
    if src is None:
        raise JepakitError("--format videofolder reads a folder of videos: give SRC before OUT")
    files, labels, classes = scan_videos(src)
    order = list(range(len(files)))
    random.Random(int(options.get("seed", 0))).shuffle(order)
    jobs = [(i, str(files[j]), None if labels is None else labels[j]) for i, j in enumerate(order)]
    kind = f"{len(classes)} class folders of videos" if classes else "a flat folder of videos"
    return Source(jobs, _video_item, len(jobs), classes, f"{src} ({kind})", unit="video",
                  dataset="video_webdataset")


FORMAT = ShardFormat("videofolder", open_video_folder,
                     "class subfolders of videos, or a flat folder of videos", holds_videos)
