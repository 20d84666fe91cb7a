"""Batches of (images, labels, masks): masks are drawn in the collate function,
inside the loader's workers, so masking overlaps with the training step."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, RandomSampler, get_worker_info
from torchdata.stateful_dataloader import StatefulDataLoader

from jepakit.contracts import Masker, Masks
from jepakit.data.badsamples import DataStats, tally
from jepakit.errors import JepakitError

# torchdata calls a deprecated torch API on every loader start; the warning is noise to users.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated")


@attrs.define
class Batch:
    images: torch.Tensor
    labels: torch.Tensor | None
    masks: Masks
    data_stats: DataStats | None = None
    """Good and bad sample counts since the previous batch of the same worker."""

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(
            images=self.images.to(device, non_blocking=nb),
            labels=None if self.labels is None else self.labels.to(device, non_blocking=nb),
            masks=Masks(
                context=[m.to(device, non_blocking=nb) for m in self.masks.context],
                targets=[m.to(device, non_blocking=nb) for m in self.masks.targets],
            ),
            data_stats=self.data_stats,
        )


class MaskCollator:
    """Stack images and draw masks with a generator seeded by (seed, rank, worker).

    Picklable, so it runs in DataLoader workers; each worker gets its own stream.
    """

    def __init__(self, masker: Masker, patch_grid: tuple[int, int], seed: int, rank: int = 0) -> None:
        self.masker = masker
        self.patch_grid = (int(patch_grid[0]), int(patch_grid[1]))
        self.seed = seed
        self.rank = rank
        self._generator: torch.Generator | None = None

    def _stream(self) -> torch.Generator:
        if self._generator is None:
            info = get_worker_info()
            worker = info.id if info is not None else 0
            entropy = np.random.SeedSequence([self.seed, self.rank, worker]).generate_state(2)
            self._generator = torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_generator": None}

    def __call__(self, samples: list[Any]) -> Batch:
        if isinstance(samples[0], (tuple, list)):
            images = torch.stack([s[0] for s in samples])
            labels: torch.Tensor | None = torch.as_tensor([int(s[1]) for s in samples])
        else:
            images, labels = torch.stack(samples), None
        masks = self.masker(len(samples), self.patch_grid, self._stream())
        return Batch(images=images, labels=labels, masks=masks, data_stats=tally.drain())


def build_loader(
    dataset: Dataset | IterableDataset,
    collate: MaskCollator,
    batch_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
) -> StatefulDataLoader:
    """A stateful loader (its position can go into a checkpoint) that drops the last
    partial batch, so every step sees ``batch_size`` images."""
    sampler = None
    check_workers = getattr(dataset, "check_workers", None)
    if callable(check_workers):  # a streamed dataset checks its split before workers start
        check_workers(num_workers)
    if not isinstance(dataset, IterableDataset):
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, generator=generator)  # type: ignore[arg-type]
    return StatefulDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


def infinite(loader: StatefulDataLoader) -> Iterator[Batch]:
    """Cycle through epochs for as long as the trainer asks."""
    while True:
        empty = True
        try:
            for batch in loader:
                empty = False
                yield batch
        except JepakitError as exc:  # raised in a worker: keep the user's one-line message
            raise JepakitError(_worker_message(str(exc))) from None
        if empty:
            raise JepakitError(
                "the data loader produced no batch: the dataset holds fewer samples than "
                "one batch (train.batch_size per process)"
            )


def _worker_message(text: str) -> str:
    """The original message of a JepakitError re-raised from a DataLoader worker."""
    marker = "JepakitError: "
    return text.rsplit(marker, 1)[-1].strip() if "Original Traceback" in text else text
