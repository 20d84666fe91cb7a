"""Batches of images and labels from any dataset, with a position that can be saved.

Masks are not drawn here but by :class:`MaskStream` in the trainer, keyed on
(seed, rank, step): a resumed run, whatever its worker count, draws exactly the
masks the uninterrupted run would have (2 ms per batch of 128, off the GPU's
critical path)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, IterableDataset
from torchdata.stateful_dataloader import StatefulDataLoader

from jepakit.contracts import Masker, Masks
from jepakit.data.badsamples import DataStats, tally
from jepakit.errors import JepakitError
from jepakit.masking import require_rank

# torchdata calls a deprecated torch API on every loader start; the warning is noise to users.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated")


@attrs.define
class Batch:
    images: torch.Tensor
    labels: torch.Tensor | None
    masks: Masks | None = None
    data_stats: DataStats | None = None
    """Good and bad sample counts since the previous batch of the same worker."""
    views: list[torch.Tensor] | None = None
    """Several views of each sample (``views:`` in the recipe): one [B, C, h, w] tensor per
    view, the recipe's groups in order (global views first); ``images`` is the first."""

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        views = None if self.views is None else [v.to(device, non_blocking=nb) for v in self.views]
        return Batch(
            images=views[0] if views else self.images.to(device, non_blocking=nb),
            labels=None if self.labels is None else self.labels.to(device, non_blocking=nb),
            masks=None if self.masks is None else self.masks.to(device),
            data_stats=self.data_stats,
            views=views,
        )


def collate(samples: list[Any]) -> Batch:
    """Stack images (and labels when the dataset gives ``(image, label)`` pairs);
    the dataset's good/bad sample counts ride along. A sample whose image is a list of
    view tensors gives the batch one stacked tensor per view."""
    labels: torch.Tensor | None = None
    if isinstance(samples[0], (tuple, list)):
        labels = torch.as_tensor([int(s[1]) for s in samples])
        samples = [s[0] for s in samples]
    if isinstance(samples[0], (tuple, list)):
        views = [torch.stack(group) for group in zip(*samples)]
        return Batch(images=views[0], labels=labels, data_stats=tally.drain(), views=views)
    return Batch(images=torch.stack(samples), labels=labels, data_stats=tally.drain())


class MaskStream:
    """Masks for each training step, from a generator seeded by (seed, rank, step)."""

    def __init__(self, masker: Masker, patch_grid: tuple[int, ...], seed: int, rank: int = 0) -> None:
        self.masker = masker
        self.patch_grid = tuple(int(s) for s in patch_grid)  # rows, columns or frames, rows, columns
        require_rank(masker, self.patch_grid)  # a 2-D masker must not read a video grid
        self.seed = seed
        self.rank = rank

    def generator(self, step: int) -> torch.Generator:
        entropy = np.random.SeedSequence([self.seed, self.rank, step]).generate_state(2)
        return torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))

    def __call__(self, batch_size: int, step: int) -> Masks:
        return self.masker(batch_size, self.patch_grid, self.generator(step))


def build_loader(
    dataset: Dataset | IterableDataset,
    batch_size: int,
    num_workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> StatefulDataLoader:
    """A stateful loader (its position can go into a checkpoint) that drops the last
    partial batch, so every step sees ``batch_size`` images. A map-style dataset is
    split across ranks by a DistributedSampler (reshuffled per epoch by :class:`Epochs`);
    an iterable one splits itself."""
    sampler: DistributedSampler | None = None
    check_workers = getattr(dataset, "check_workers", None)
    if callable(check_workers):  # a streamed dataset checks its split before workers start
        check_workers(num_workers)
    if not isinstance(dataset, IterableDataset):
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed, drop_last=True)
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


class Epochs:
    """Endless batches across epochs, with a saveable position (epoch + loader state)."""

    def __init__(self, loader: StatefulDataLoader) -> None:
        self.loader = loader
        self.epoch = 0
        self._iterator: Iterator[Batch] | None = None
        self._resumed = False  # the next iterator continues a loaded position
        self._from_start = self._yielded = False

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        while True:
            if self._iterator is None:
                sampler = self.loader.sampler
                if isinstance(sampler, DistributedSampler):
                    sampler.set_epoch(self.epoch)
                self._iterator = iter(self.loader)
                self._from_start, self._resumed, self._yielded = not self._resumed, False, False
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator = None
                self.epoch += 1
                if self._from_start and not self._yielded:
                    raise JepakitError(
                        "the data loader produced no batch: the dataset holds fewer samples "
                        "than one batch (train.batch_size per process)"
                    ) from None
                continue
            except JepakitError as exc:  # raised in a worker: keep the one-line message
                raise JepakitError(_worker_message(str(exc))) from None
            self._yielded = True
            return batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "loader": self.loader.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        sampler = self.loader.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.epoch)
        self.loader.load_state_dict(state["loader"])
        self._iterator = None
        self._resumed = True


def infinite(loader: StatefulDataLoader) -> Iterator[Batch]:
    """Cycle through epochs for as long as the caller asks."""
    return Epochs(loader)


def _worker_message(text: str) -> str:
    """The original message of a JepakitError re-raised from a DataLoader worker."""
    marker = "JepakitError: "
    return text.rsplit(marker, 1)[-1].strip() if "Original Traceback" in text else text
