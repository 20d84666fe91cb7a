"""Stream training images from WebDataset tar shards: local paths, brace patterns,
``pipe:`` commands (``pipe:curl -s https://...``, ``pipe:aws s3 cp s3://... -``),
or the ``index.json`` that ``jepakit shards make`` writes.

Shards are opened with ``webdataset.gopen`` (so every URL form WebDataset
accepts works) and read with jepakit's strict tar reader, which notices a
truncated or corrupt shard instead of ending it quietly; the samples lost are
counted exactly when an index gives the shard's size. Coverage (exact or
resampled), splitting over ranks and workers, the shuffle buffer and the
checkpointable position come from :class:`jepakit.data.stream.StreamingDataset`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import webdataset as wds

from jepakit.data import tar
from jepakit.data.decode import IMAGE_EXTENSIONS, ImageDecoder
from jepakit.data.index import read_index, shard_urls, sibling_index
from jepakit.data.stream import RawSample, StreamingDataset, bad_marker
from jepakit.data.views import ViewGroup
from jepakit.data.viewsources import ViewDecoder
from jepakit.errors import ConfigError

from .still_clips import StillClipDecoder, check_frames
from .transforms import ImageStreamConfig


@attrs.define
class WebDatasetConfig(ImageStreamConfig):
    urls: str | list[str] = ""
    """Shards: ``dir/shard-{000000..000099}.tar``, a list, ``pipe:`` commands, or an index.json."""
    index: str | None = None
    """An index.json giving per-shard sample counts for shards named in ``urls`` (found
    automatically next to local shards)."""
    image_keys: str | list[str] = ";".join(IMAGE_EXTENSIONS)
    """Extensions to take the image from, first present wins."""
    label_key: str = "cls"


def _keys(spec: str | list[str]) -> list[str]:
    return [k.strip().lower() for k in (spec.split(";") if isinstance(spec, str) else spec)
            if k.strip()]


def resolve_urls(config: WebDatasetConfig) -> tuple[list[str], dict[str, int]]:
    """Expanded shard URLs and, where an index says, each shard's sample count."""
    specs = [config.urls] if isinstance(config.urls, str) else list(config.urls)
    if not any(s.strip() for s in specs):
        raise ConfigError("data.params.urls is empty: point it at your shards "
                          "(a brace pattern, a list, pipe: commands or an index.json)")
    urls: list[str] = []
    expected: dict[str, int] = {}
    for spec in specs:
        if spec.endswith(".json"):
            index = read_index(spec)
            found = shard_urls(spec, index)
            urls += found
            expected.update({u: int(s["samples"]) for u, s in zip(found, index.shards)})
        else:
            urls += wds.shardlists.expand_urls(spec)
    indexes = [read_index(config.index)] if config.index else []
    if not config.index and urls and not expected:
        found_index = sibling_index(urls[0])
        indexes = [found_index] if found_index else []
    for index in indexes:
        counts = {str(s["name"]).rsplit("/", 1)[-1]: int(s["samples"]) for s in index.shards}
        for url in urls:
            name = url.rsplit("/", 1)[-1]
            if url not in expected and name in counts:
                expected[url] = counts[name]
    _check_local(urls)
    return urls, expected


def _check_local(urls: list[str]) -> None:
    """A local shard that does not exist is a typo in the recipe, not bad data."""
    local = [u for u in urls if ":" not in u.split("/", 1)[0]]
    missing = [u for u in local if not Path(u).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ConfigError(f"data.params.urls: {len(missing)} of {len(urls)} shard(s) not found: "
                          f"{', '.join(missing[:3])}{more}")


class TarShards(StreamingDataset):
    """Units are shard URLs; each yields WebDataset samples grouped by key."""

    def read_unit(self, unit: str) -> Iterator[RawSample]:
        expected = self.expected.get(unit)
        got, last_key = 0, ""
        stream = samples = None
        try:
            stream = wds.gopen(unit)
            samples = tar.Samples(tar.open_stream(stream), __url__=unit)
            for sample in samples:
                got, last_key = got + 1, sample["__key__"]
                yield sample
            if expected is not None and got != expected:
                yield bad_marker(unit, f"after {last_key or 'the start'}",
                                 f"shard holds {got} samples, its index says {expected}",
                                 max(0, expected - got))
        except Exception as exc:  # unreadable URL, truncated or corrupt tar, failed pipe
            lost = max(1, expected - got) if expected is not None else 1
            key = (samples and samples.pending_key) or f"after {last_key or 'the start'}"
            unknown = "" if expected is not None else " (no index: samples after it are uncounted)"
            yield bad_marker(unit, key, f"{type(exc).__name__}: {exc}{unknown}", lost)
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # a pipe's exit status: the tar reader has judged the data
                    pass


def make_webdataset(config: WebDatasetConfig, *, image_size: int, in_chans: int = 3,
                    seed: int = 0, views: list[ViewGroup] | None = None,
                    num_frames: int | None = None) -> TarShards:
    """Samples are ``(image, label)``, or ``(list of views, label)`` when ``views`` is given;
    with ``num_frames`` (a video encoder), each image is a still clip [C, T, H, W]."""
    urls, expected = resolve_urls(config)
    keys = _keys(config.image_keys)
    decoder = (ImageDecoder(config.transform(image_size, in_chans), in_chans, keys, config.label_key)
               if views is None else
               ViewDecoder(config.views(views, in_chans), seed, in_chans, keys, config.label_key))
    frames = check_frames(num_frames)
    return TarShards(urls, decoder if frames is None else StillClipDecoder(decoder, frames),
                     config, seed=seed, expected=expected)
