"""The ``synthetic`` source's factory: procedural images, or several views of them.

With ``views``, each image is rendered at the largest view size (or the recipe's
``data.params.image_size``) and the views are cropped and augmented from that tensor
in the loader workers (:class:`jepakit.data.viewsources.ViewDataset`). Without, it is
exactly :class:`SyntheticImages`.
"""

from __future__ import annotations

from jepakit.data.views import MultiView, ViewGroup
from jepakit.data.viewsources import ViewDataset

from .synthetic import SyntheticConfig, SyntheticImages


def make_synthetic(config: SyntheticConfig, *, image_size: int | tuple[int, int] = 32,
                   in_chans: int = 3, seed: int = 0, views: list[ViewGroup] | None = None
                   ) -> SyntheticImages | ViewDataset:
    if views is None:
        return SyntheticImages(config, image_size=image_size, in_chans=in_chans, seed=seed)
    images = SyntheticImages(config, image_size=max(g.size for g in views), in_chans=in_chans,
                             seed=seed)
    # the renderer's pixels are centred on 0 with a spread of about 1: map them to [0, 1]
    # for the photometric steps (x / 2 + 1/2) and back (normalise by 0.5, 0.5)
    half = (0.5,) * in_chans
    return ViewDataset(images, MultiView(views, in_chans=in_chans, mean=half, std=half), seed,
                       unit=(0.5, 0.5))
