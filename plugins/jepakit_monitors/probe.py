"""End-of-run linear probe: evidence, in seconds, that the run learned something.

A falling loss does not show that a JEPA learned: the positional shortcut lowers it
too (docs/monitoring.md). After the last step this fits a linear classifier on the
target encoder's frozen, average-pooled features of held-out labelled images, and
the same for the encoder at its random initialisation, the baseline learning must
beat (I-JEPA's evaluation protocol, Assran et al., 2023, section 5, on a small
scale). Turned on by ``monitors.probe_samples`` (held-out images: half fit the
probe, half test it).

Held-out images come from the training dataset itself when it can make unseen ones
(a ``held_out(n)`` method: the synthetic dataset renders images with indices past
its own), else from ``monitors.knn_data`` (labelled data, as for the k-NN monitor).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from jepakit.eval.features import encode, encoder_from_recipe, plain_target
from jepakit.eval.probe import linear_probe, split_indices
from jepakit.runtime import autocast
from jepakit.tracking import log

WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)
"""A short sweep keeps the probe to seconds (jepakit eval sweeps more)."""


def held_out_images(trainer: Any, encoder: Any, samples: int
                    ) -> tuple[torch.Tensor, torch.Tensor, str] | None:
    """``(images, labels, description)`` of ``samples`` labelled images the run never saw."""
    recipe = trainer.recipe
    size, chans = int(encoder.image_size[0]), int(encoder.in_chans)
    frames = getattr(encoder, "num_frames", None)  # a video encoder: clips of its length
    dataset = trainer.registry.create("dataset", recipe.data.name, recipe.data.params,
                                      path="data.params", image_size=size, in_chans=chans,
                                      seed=recipe.train.seed,
                                      **({"num_frames": int(frames)} if frames else {}))
    make = getattr(dataset, "held_out", None)
    if callable(make):
        held: Dataset = make(samples)
        x, y = _stack(held)
        return x, y, f"held-out {recipe.data.name} {'clips' if frames else 'images'}"
    if recipe.section("monitors").knn_data:
        from .knn_monitor import KnnMonitor

        mean, std = _norm(recipe)
        data = KnnMonitor(recipe.section("monitors").knn_data, size, chans, mean, std,
                          samples - samples // 2, samples // 2)
        return (torch.cat([data.train_x, data.test_x]).float(),
                torch.cat([data.train_y, data.test_y]), f"images of {recipe.section('monitors').knn_data}")
    return None


def _norm(recipe: Any) -> tuple[Any, Any]:
    params = dict(recipe.data.params)
    if params.get("mean") is None or params.get("std") is None:
        return None, None
    return tuple(params["mean"]), tuple(params["std"])


def _stack(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for images, labels in DataLoader(dataset, batch_size=256):  # type: ignore[arg-type]
        xs.append(images)
        ys.append(torch.as_tensor(labels))
    return torch.cat(xs).float(), torch.cat(ys).long()


@torch.no_grad()
def features(encoder: Any, images: torch.Tensor, device: torch.device,
             dtype: torch.dtype | None, batch: int = 256) -> torch.Tensor:
    encoder.eval()
    out = []
    for i in range(0, len(images), batch):
        with autocast(device, dtype):
            out.append(encode(encoder, images[i:i + batch].to(device), "last").float().cpu())
    return torch.cat(out)


def probe(encoder: Any, x: torch.Tensor, y: torch.Tensor, device: torch.device,
          dtype: torch.dtype | None, seed: int = 0) -> float:
    """Test accuracy of a linear probe fitted on one half of ``x`` and tested on the other."""
    feats = features(encoder, x, device, dtype)
    fit, test = split_indices(y, 0.5, seed)
    result = linear_probe(feats[fit], y[fit], feats[test], y[test], WEIGHT_DECAYS)
    return float(result["accuracy"])


def end_of_run_probe(trainer: Any, samples: int) -> dict[str, Any] | None:
    """Probe accuracies of the trained target encoder and of the random initialisation."""
    start = time.perf_counter()
    trained = plain_target(trainer.model)
    found = held_out_images(trainer, trained, samples)
    if found is None:
        log.warning("monitors.probe_samples: the dataset cannot make held-out images and "
                    "monitors.knn_data is not set; no end-of-run probe")
        return None
    x, y, what = found
    if len(torch.unique(y)) < 2 or bool((y < 0).any()):
        log.warning("monitors.probe_samples: the held-out images need labels of two or more "
                    "classes; no end-of-run probe")
        return None
    device, dtype = trainer.device, trainer.dtype
    accuracy = probe(trained, x, y, device, dtype)
    initial = encoder_from_recipe(trainer.recipe, trainer.registry).to(device)
    baseline = probe(initial, x, y, device, dtype)
    seconds = time.perf_counter() - start
    log.info("end-of-run linear probe on %d %s: %.4f (random init %.4f), %.1f s",
             len(y), what, accuracy, baseline, seconds)
    return {"probe_accuracy": accuracy, "probe_random_init_accuracy": baseline,
            "probe_samples": len(y), "probe_data": what, "probe_seconds": seconds}
