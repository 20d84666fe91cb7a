"""In-training k-NN accuracy: the cheap answer to "is it learning?" while it trains.

Every ``monitors.knn_every_steps`` steps the target encoder embeds a fixed labelled
subset of ``monitors.knn_data`` (``knn_train_samples`` reference images and
``knn_test_samples`` queries, read once at the start with the deterministic eval
transform) and classifies the queries by weighted 20-NN (DINO's monitor, Caron et
al., 2021). The value is logged as ``knn_top1``. Cost: one forward pass over
those images each time, so keep the subsets small or the interval long.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from jepakit.errors import ConfigError, JepakitError
from jepakit.eval.data import EvalImages, collate_eval, eval_transform, resolve_pair
from jepakit.eval.features import encode
from jepakit.eval.knn import knn_accuracy
from jepakit.eval.probe import split_indices
from jepakit.runtime import autocast
from jepakit.tracking import log


def _stack(dataset: EvalImages, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    from torch.utils.data import DataLoader

    xs, ys = [], []
    for images, labels, _ in DataLoader(dataset, batch_size=batch, collate_fn=collate_eval):
        if len(labels):
            xs.append(images)
            ys.append(labels)
    if not xs:
        raise JepakitError(f"monitors.knn_data: no readable images in {dataset.source.describe()}")
    y = torch.cat(ys)
    if bool((y < 0).any()):
        raise ConfigError(f"monitors.knn_data: {dataset.source.describe()} has unlabelled "
                          "samples; the k-NN monitor needs labels")
    return torch.cat(xs).to(torch.float16), y


class KnnMonitor:
    """Images held in memory (float16) so each evaluation is forward passes only."""

    def __init__(self, data: str, image_size: int, in_chans: int,
                 mean: tuple[float, ...] | None, std: tuple[float, ...] | None,
                 train_samples: int, test_samples: int, k: int = 20) -> None:
        start = time.perf_counter()
        train_src, test_src = resolve_pair(data)
        transform = eval_transform(image_size, in_chans, mean, std)
        if test_src is None:
            x, y = _stack(EvalImages(train_src, transform, in_chans,
                                     train_samples + test_samples))
            keep, held = split_indices(y, test_samples / max(len(y), 1))
            self.train_x, self.train_y = x[keep], y[keep]
            self.test_x, self.test_y = x[held], y[held]
        else:
            self.train_x, self.train_y = _stack(EvalImages(train_src, transform, in_chans,
                                                           train_samples))
            self.test_x, self.test_y = _stack(EvalImages(test_src, transform, in_chans,
                                                         test_samples))
        self.k = k
        log.info("k-NN monitor: %d reference and %d query images from %s, read in %.1f s",
                 len(self.train_y), len(self.test_y), data, time.perf_counter() - start)

    @torch.no_grad()
    def features(self, encoder: Any, images: torch.Tensor, device: torch.device,
                 dtype: torch.dtype | None, batch: int = 256) -> torch.Tensor:
        out = []
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(device).float()
            with autocast(device, dtype):
                out.append(encode(encoder, x, "last").float().cpu())
        return torch.cat(out)

    def __call__(self, encoder: Any, device: torch.device, dtype: torch.dtype | None) -> float:
        mode = encoder.training
        encoder.eval()
        try:
            train = self.features(encoder, self.train_x, device, dtype)
            test = self.features(encoder, self.test_x, device, dtype)
        finally:
            encoder.train(mode)
        return knn_accuracy(train, self.train_y, test, self.test_y, k=self.k)
