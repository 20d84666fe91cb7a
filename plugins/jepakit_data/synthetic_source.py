"""The ``synthetic`` source's factory: procedural images, or several views of them.

With ``views``, each image is rendered at the largest view size (or the recipe's
``data.params.image_size``) and the views are cropped and augmented from that tensor
in the loader workers (:class:`jepakit.data.viewsources.ViewDataset`). Without, it is
exactly :class:`SyntheticImages`. With ``num_frames``, either as still clips
(:mod:`jepakit_data.still_clips`).
"""

from __future__ import annotations

from jepakit.data.views import MultiView, ViewGroup
from jepakit.data.viewsources import ViewDataset

from .still_clips import StillClips, check_frames
from .synthetic import SyntheticConfig, SyntheticImages


def make_synthetic(config: SyntheticConfig, *, image_size: int | tuple[int, int] = 32,
                   in_chans: int = 3, seed: int = 0, views: list[ViewGroup] | None = None,
                   num_frames: int | None = None) -> SyntheticImages | ViewDataset | StillClips:
    """With ``num_frames`` (a video encoder), items are still clips [C, T, H, W]."""
    dataset = _make(config, image_size, in_chans, seed, views)
    frames = check_frames(num_frames)
    return dataset if frames is None else StillClips(dataset, frames)


def _make(config: SyntheticConfig, image_size: int | tuple[int, int], in_chans: int, seed: int,
          views: list[ViewGroup] | None) -> SyntheticImages | ViewDataset:
    if views is None:
        return SyntheticImages(config, image_size=image_size, in_chans=in_chans, seed=seed)
    images = SyntheticImages(config, image_size=max(g.size for g in views), in_chans=in_chans,
                             seed=seed)
    # the renderer's pixels are centred on 0 with a spread of about 1: map them to [0, 1]
    # for the photometric steps (x / 2 + 1/2) and back (normalise by 0.5, 0.5)
    half = (0.5,) * in_chans
    return ViewDataset(images, MultiView(views, in_chans=in_chans, mean=half, std=half), seed,
                       unit=(0.5, 0.5))
