"""The two evaluation protocols end to end: features of train and test sets (from
the cache when possible), then a linear probe or k-NN, as one JSON-ready dict.
``jepakit eval`` and ``benchmarks/fmnist_probe.py`` both call these."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
import torch

from jepakit import __version__
from jepakit.errors import JepakitError
from jepakit.eval.attentive import attentive_probe, extract_tokens
from jepakit.eval.data import Format, LabelledSource, holds_images, resolve_pair
from jepakit.eval.features import Features, FeatureSource, Layers, effective_layers, extract
from jepakit.eval.knn import knn_accuracy
from jepakit.eval.probe import WEIGHT_DECAYS, few_shot, linear_probe, split_indices
from jepakit.eval.rank import rankme, rankme_of_singular_values
from jepakit.eval.solver import col_blocks

HELD_OUT = 0.2
"""Fraction of a single labelled set held out as its test set."""


@attrs.define
class EvalData:
    train: Features
    test: Features
    train_source: LabelledSource
    test_source: LabelledSource | None
    """None: the test set was held out of ``train_source``."""
    layers: str


def default_cache_dir(source: FeatureSource) -> Path | None:
    if source.run_dir is not None:
        return source.run_dir / "eval" / "cache"
    if source.checkpoint is not None:
        return source.checkpoint.parent / "eval-cache"
    return None


def prepare(source: FeatureSource, data: str | Path, test_data: str | Path | None = None,
            fmt: Format = "auto", layers: Layers = "last", shots: int | None = None,
            batch_size: int = 256, num_workers: int = 0, cache_dir: Path | None = None,
            use_cache: bool = True, crop_ratio: float = 1.0, seed: int = 0,
            train_limit: int | None = None, test_limit: int | None = None,
            progress: bool = True, device: torch.device | str = "cpu", tokens: bool = False,
            patch: int | None = None, shots_file: str | Path | None = None) -> EvalData:
    """Train and test features (held out of ``data`` when it has no test split):
    average-pooled, or with ``tokens`` the encoder's output tokens [N, tokens, D] for
    the attentive probe (pixel patches of size ``patch`` for a pixel source). Low-shot:
    ``shots`` seeded examples per class, or the images named in ``shots_file``."""
    if shots is not None and shots < 1:
        raise JepakitError(f"--shots must be >= 1, got {shots}")
    train_src, test_src = resolve_pair(data, test_data, fmt)
    cache = (cache_dir or default_cache_dir(source)) if use_cache else None
    common: dict[str, Any] = dict(batch_size=batch_size, num_workers=num_workers,
                                  cache_dir=cache, crop_ratio=crop_ratio, progress=progress,
                                  device=device)
    if tokens:
        def get(src: LabelledSource, **kw: Any) -> Features:
            return extract_tokens(source, src, patch, **kw, **common)
    else:
        def get(src: LabelledSource, **kw: Any) -> Features:
            return extract(source, src, layers=layers, **kw, **common)
    train = get(train_src, desc="train", limit=train_limit)
    if test_src is not None:
        test = get(test_src, desc="test", limit=test_limit)
    else:
        keep, held = split_indices(train.y, HELD_OUT, seed)
        test = attrs.evolve(train.select(held), bad_samples=0)
        train = train.select(keep)
    if shots_file is not None:
        train = train.select(split_file_indices(train, train_src, shots_file))
    elif shots is not None:
        train = train.select(few_shot(train.y, shots, seed))
    if len(torch.unique(train.y)) < 2:
        raise JepakitError(f"{train_src.describe()}: a single class; evaluation needs two or more")
    used = ("tokens" if source.encoder is not None else "pixel patches") if tokens \
        else effective_layers(source, layers)
    return EvalData(train, test, train_src, test_src, used)


def split_file_indices(train: Features, source: LabelledSource, path: str | Path
                       ) -> torch.Tensor:
    """Rows of ``train`` whose image file is named in ``path`` (one file name per line,
    as the 1%/10% ImageNet split files of SimCLR that I-JEPA uses, e.g.
    ``n01440764_10026.JPEG``; matched on the name without its folder or extension)."""
    if source.kind != "imagefolder" or train.keys is None:
        raise JepakitError(f"--shots-file needs an image folder (it matches file names); "
                           f"{source.describe()} is {source.kind}")
    try:
        wanted = {Path(line.strip()).stem for line in Path(path).read_text().splitlines()
                  if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise JepakitError(f"cannot read the split file {path}: {exc}") from None
    names = [Path(str(source.units[int(k) >> 32][int(k) & 0xFFFFFFFF][0])).stem
             for k in train.keys.tolist()]
    idx = torch.tensor([i for i, n in enumerate(names) if n in wanted], dtype=torch.long)
    if not len(idx):
        raise JepakitError(f"{path}: none of its {len(wanted)} file names is in "
                           f"{source.describe()}")
    return idx


def sample_rankme(x: torch.Tensor, idx: torch.Tensor) -> float:
    """RankMe of the centred rows ``idx`` of ``x``; through their Gram matrix, in column
    blocks, when they are wider than tall (raw 224 px pixels: 4,096 x 150,528)."""
    if x.shape[1] <= len(idx):
        z = x[idx].double()
        return rankme(z - z.mean(0))
    gram = torch.zeros(len(idx), len(idx), dtype=torch.float64)
    for cols in col_blocks(len(idx), x.shape[1]):
        blk = x[:, cols][idx].double()
        blk -= blk.mean(0)
        gram += blk @ blk.T
    return rankme_of_singular_values(torch.linalg.eigvalsh(gram).clamp_min(0).sqrt())


def _unit(source: FeatureSource, data: LabelledSource) -> str:
    """What one sample is: an image, a clip, or a video read as several clips."""
    if source.clips is None or holds_images(data):
        return "images"
    k = source.clips.clips_per_video
    return "clips" if k == 1 else f"videos of {k} clips"


def _common(source: FeatureSource, d: EvalData, shots: int | None) -> dict[str, Any]:
    x = d.train.x
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:4096]
    if x.dim() == 3:  # tokens: RankMe of their average
        x, idx = x[idx].float().mean(1), torch.arange(len(idx))
    return {
        "source": source.description,
        "checkpoint": str(source.checkpoint) if source.checkpoint else None,
        "step": source.step,
        "layers": d.layers,
        "feature_dim": int(d.train.x.shape[-1]),
        "tokens": int(d.train.x.shape[1]) if d.train.x.dim() == 3 else None,
        "feature_rankme": sample_rankme(x, idx),
        "train_data": d.train_source.describe(),
        "test_data": d.test_source.describe() if d.test_source else
        f"{int(HELD_OUT * 100)}% held out of the train data",
        "sample_unit": _unit(source, d.train_source),
        "train_samples": len(d.train.y),
        "test_samples": len(d.test.y),
        "shots": shots,
        "classes": d.train.classes,
        "bad_samples": d.train.bad_samples + d.test.bad_samples,
        "features_from_cache": d.train.from_cache and d.test.from_cache,
        "jepakit_version": __version__,
    }


def run_linear(source: FeatureSource, d: EvalData, shots: int | None = None,
               weight_decays: tuple[float, ...] = WEIGHT_DECAYS, seed: int = 0,
               max_iter: int = 150) -> dict[str, Any]:
    start = time.perf_counter()
    r = linear_probe(d.train.x, d.train.y, d.test.x, d.test.y, weight_decays, seed=seed,
                     max_iter=max_iter)
    r.pop("classifier")
    return {"protocol": "linear", **r, **_common(source, d, shots),
            "probe_s": time.perf_counter() - start}


def run_knn(source: FeatureSource, d: EvalData, shots: int | None = None, k: int = 20,
            temperature: float = 0.07) -> dict[str, Any]:
    if k < 1 or temperature <= 0:
        raise JepakitError("k-NN needs k >= 1 and temperature > 0")
    start = time.perf_counter()
    acc = knn_accuracy(d.train.x, d.train.y, d.test.x, d.test.y, k, temperature)
    used = min(k, len(d.train.y))  # knn_predict's k: fewer training images, all of them vote
    return {"protocol": "knn", "accuracy": acc, "k": used, "k_requested": k,
            "temperature": temperature,
            **_common(source, d, shots), "probe_s": time.perf_counter() - start}


def run_attentive(source: FeatureSource, d: EvalData, shots: int | None = None,
                  **kw: Any) -> dict[str, Any]:
    """The attentive probe on token features (``prepare(..., tokens=True)``); ``kw``:
    :func:`jepakit.eval.attentive.attentive_probe`'s options."""
    if d.train.x.dim() != 3:
        raise JepakitError("the attentive probe needs token features: "
                           "prepare(..., tokens=True)")
    start = time.perf_counter()
    r = attentive_probe(d.train.x, d.train.y, d.test.x, d.test.y, **kw)
    return {"protocol": "attentive", **r, **_common(source, d, shots),
            "probe_s": time.perf_counter() - start}


def summary_line(r: dict[str, Any]) -> str:
    what = {"linear": "linear probe", "attentive": "attentive probe"}.get(
        r["protocol"], f"{r.get('k')}-NN")
    shots = f", {r['shots']}-shot" if r.get("shots") else ""
    extra = f", weight decay {r['weight_decay']:g}" if r["protocol"] == "linear" else ""
    if r["protocol"] == "linear" and r.get("weight_decay_chosen_by") == "low-shot rule":
        extra += " (fixed: too few held-out images to sweep)"
    if r["protocol"] == "attentive":
        extra = f", lr {r['learning_rate']:g}, weight decay {r['weight_decay']:g}"
    unit = r.get("sample_unit", "images")
    if r.get("tokens"):
        return (f"{what}: top-1 {r['accuracy']:.4f} on {r['test_samples']} test {unit} "
                f"({r['train_samples']} train{shots}; {r['tokens']} x {r['feature_dim']}-d "
                f"{r['layers']} of {r['source']}{extra})")
    return (f"{what}: top-1 {r['accuracy']:.4f} on {r['test_samples']} test {unit} "
            f"({r['train_samples']} train{shots}; {r['feature_dim']}-d {r['layers']} features "
            f"of {r['source']}{extra})")
