"""Views for the two kinds of data source, with randomness that survives a resume.

A loader worker's RNG restarts from its seed when a run resumes, so augmentations
drawn from it would differ from the uninterrupted run. Views are keyed instead:

* streamed sources (:class:`ViewDecoder`): on the run seed and the sample's slot in
  the stream, ``(epoch, rank, worker, position)``, which the stream's saved position
  restores;
* map-style sources (:class:`ViewDataset`): on the run seed, rank, worker and a count
  of the samples that worker has produced, saved with the loader's state (torchdata's
  StatefulDataLoader keeps each worker's dataset state). The index alone would give
  the same crops every epoch.

Both need the same rank and worker count on resume, as the streamed position does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from jepakit.data.decode import IMAGE_EXTENSIONS, ImageDecoder
from jepakit.data.stream import RawSample, rank_and_world, worker_and_count
from jepakit.data.views import MultiView


def sample_seed(*parts: int) -> int:
    """A 64-bit seed that depends only on ``parts`` (well mixed, non-negative)."""
    state = np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


class ViewDecoder(ImageDecoder):
    """Raw sample -> (list of view tensors, label), keyed on the sample's slot."""

    def __init__(self, views: MultiView, seed: int, in_chans: int = 3,
                 image_keys: Sequence[str] = IMAGE_EXTENSIONS, label_key: str = "cls") -> None:
        super().__init__(views, in_chans, image_keys, label_key)
        self.views = views
        self.seed = seed

    def __call__(self, raw: RawSample) -> tuple[list[torch.Tensor], int]:
        image, label = self.image(raw), self.label(raw)
        slot = raw.get("__slot__")
        seed = None if slot is None else sample_seed(self.seed, *slot)
        return self.views(image, seed), label


class ViewDataset(Dataset):
    """A map-style dataset of ``(image, label)`` as ``(list of views, label)``.

    ``unit = (scale, shift)`` maps the base images to [0, 1] first (``x * scale + shift``),
    for sources whose tensors are on another scale."""

    def __init__(self, base: Any, views: MultiView, seed: int,
                 unit: tuple[float, float] = (1.0, 0.0)) -> None:
        self.base = base
        self.views = views
        self.seed = seed
        self.unit = unit
        self.produced = 0
        """Samples this process (or worker) has produced: the key of the next one's views."""

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:  # e.g. ``classes`` of the base dataset
        if name == "base" or name.startswith("__"):  # unpickling; no __getitems__ bypass
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], int]:
        image, label = self.base[index]
        scale, shift = self.unit
        if (scale, shift) != (1.0, 0.0):
            image = image * scale + shift
        seed = sample_seed(self.seed, rank_and_world()[0], worker_and_count()[0], self.produced)
        self.produced += 1
        return self.views(image, seed), label

    def state_dict(self) -> dict[str, int]:
        return {"produced": self.produced}

    def load_state_dict(self, state: dict[str, int] | None) -> None:
        self.produced = int(state["produced"]) if state else 0
