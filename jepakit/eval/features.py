"""Frozen features of a run's target encoder, extracted once and cached.

I-JEPA evaluates the *target* encoder, average-pooled over patches, from the last
layer or the last 4 layers concatenated (Assran et al., 2023, arXiv 2301.08243,
section 5 and appendix C). The encoder contract promises the last layer
(``encoder(images) -> tokens [B, N, D]``); for "last 4" jepakit calls the encoder's
``forward_intermediates(images, indices=4, norm=True)`` (timm's API; the shipped
``vit`` and ``timm`` encoders have it), the final norm applied to each of the last
four block outputs as DINO's ``get_intermediate_layers`` does. Other encoders give
the last layer only (with a warning).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from torch import nn

from jepakit import checkpoint as ckpt
from jepakit.errors import JepakitError
from jepakit.eval.clips import ClipDecoding
from jepakit.eval.data import LabelledSource, eval_transform, holds_images

log = logging.getLogger("jepakit")

Layers = Literal["last", "last4"]
LAYERS: tuple[str, ...] = ("last", "last4")
CACHE_VERSION = 3
"""2: a hooked target module (data2vec) is read as the plain encoder, not as its hooks.
3: fp16 raw arrays + JSON header, memory-mapped (:mod:`jepakit.eval.cache`)."""


@attrs.define
class FeatureSource:
    """What turns images into features: a target encoder, or raw pixels (``encoder`` None)."""

    encoder: nn.Module | None
    description: str
    fingerprint: str
    """Changes whenever the weights could have: path, size and mtime of the checkpoint."""
    image_size: int
    in_chans: int
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    step: int | None = None
    clips: ClipDecoding | None = None
    """A video encoder's evaluation clips, cut by its run's dataset plugin (None: images)."""


def _norm_stats(data_params: dict[str, Any]) -> tuple[tuple[float, ...] | None, ...]:
    mean, std = data_params.get("mean"), data_params.get("std")
    if mean is None or std is None:
        return None, None
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


class ProjectedEncoder(nn.Module):
    """The backbone's mean-pooled embedding through the method's projector, as one token
    [B, 1, out_dim]: what ``jepakit eval --projector`` probes (the space LeJEPA's loss sees)."""

    def __init__(self, encoder: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projector = encoder, projector
        self.image_size = getattr(encoder, "image_size")  # noqa: B009 (contract attribute)
        self.in_chans = getattr(encoder, "in_chans")  # noqa: B009 (contract attribute)
        self.embed_dim = int(getattr(projector, "out_dim"))  # noqa: B009 (contract attribute)

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.projector(self.encoder(images).mean(1)).unsqueeze(1)


Head = Literal["backbone", "projector"]


def encoder_from_recipe(recipe: Any, registry: Any = None, state: dict[str, Any] | None = None,
                        head: Head = "backbone") -> nn.Module:
    """The encoder evaluation reads for ``recipe``'s method (``Method.eval_encoder``: the
    target encoder for I-JEPA, the online backbone for LeJEPA), rebuilt, with the weights
    of the checkpoint ``state`` when given, else as initialised; with ``head="projector"``
    followed by the method's projector."""
    from jepakit.method import build_method
    from jepakit.registry import default_registry

    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        torch.manual_seed(recipe.train.seed)  # random init: the weights training starts from
        model, _ = build_method(recipe, registry or default_registry(), "cpu")
    try:
        encoder = plain_target(model, state)
    except RuntimeError as exc:
        raise JepakitError(f"the checkpoint's weights do not fit its recipe: "
                           f"{str(exc).splitlines()[0]}") from None
    if head == "backbone":
        return encoder
    projector = getattr(model, "projector", None)
    if not isinstance(projector, nn.Module):
        raise JepakitError(f"--projector: the method '{recipe.spec('method').name}' of "
                           f"this run has no projector")
    return ProjectedEncoder(encoder, projector.eval().requires_grad_(False)).eval()


def plain_target(model: Any, state: dict[str, Any] | None = None) -> nn.Module:
    """The method's evaluation encoder (``Method.eval_encoder``), frozen, after loading
    the checkpoint ``state``'s module weights into the method when given. A target
    updater's own module may be hooked to answer with something else (data2vec's
    average of layers); the method returns the plain module with its weights."""
    if state is not None:
        from jepakit.method import load_module_states

        load_module_states(model, state)
    encoder: nn.Module = model.eval_encoder()
    return encoder.eval().requires_grad_(False)


def _recipe_of(state: dict[str, Any], where: Path, registry: Any) -> Any:
    from jepakit.recipe import load_recipe

    if not isinstance(state, dict) or not isinstance(state.get("recipe"), dict) \
            or "encoder" not in state:
        raise JepakitError(f"{where} is not a jepakit training checkpoint (no recipe or "
                           "encoder weights)")
    return load_recipe(state["recipe"], (), registry)


def source_for(recipe: Any, encoder: Any, description: str, fingerprint: str,
               **extra: Any) -> FeatureSource:
    """Sizes from the encoder contract (``image_size``, ``in_chans``); normalisation from
    the recipe's data params, as in training."""
    mean, std = _norm_stats(dict(recipe.spec("dataset").params))
    return FeatureSource(encoder, description, fingerprint, image_size=int(encoder.image_size[0]),
                         in_chans=int(encoder.in_chans), mean=mean, std=std,
                         clips=ClipDecoding.of(recipe, encoder), **extra)


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def from_checkpoint(path: str | Path, registry: Any = None, head: Head = "backbone"
                    ) -> FeatureSource:
    """The evaluation encoder saved in a checkpoint file."""
    p = Path(path)
    state = ckpt.load(p)  # JepakitError when missing or unreadable
    recipe = _recipe_of(state, p, registry)
    encoder = encoder_from_recipe(recipe, registry, state, head)
    step = int(state.get("step", 0))
    run_dir = p.parent.parent if p.parent.name == "checkpoints" else None
    return source_for(recipe, encoder, f"{recipe.name} step {step} {_what(head)} ({p})",
                       _file_fingerprint(p) + _suffix(head), run_dir=run_dir, checkpoint=p,
                       step=step)


def _what(head: str) -> str:
    return "encoder" if head == "backbone" else "encoder + projector"


def _suffix(head: str) -> str:
    return "" if head == "backbone" else f":{head}"


def from_run(run_dir: str | Path, registry: Any = None, head: Head = "backbone") -> FeatureSource:
    """The evaluation encoder of a run directory's newest loadable checkpoint."""
    d = Path(run_dir)
    if not d.is_dir():
        raise JepakitError(f"run directory not found: {d}")
    found = ckpt.latest_valid(d / "checkpoints", log)
    if found is None:
        raise JepakitError(f"no checkpoint in {d / 'checkpoints'}: train first, or pass "
                           "--checkpoint PATH")
    path, state = found
    recipe = _recipe_of(state, path, registry)
    encoder = encoder_from_recipe(recipe, registry, state, head)
    step = int(state.get("step", 0))
    return source_for(recipe, encoder, f"{recipe.name} step {step} {_what(head)} ({path})",
                       _file_fingerprint(path) + _suffix(head), run_dir=d, checkpoint=path,
                       step=step)


def from_recipe(recipe_path: str | Path, overrides: tuple[str, ...] = (), registry: Any = None
                ) -> FeatureSource:
    """The recipe's encoder with random weights (the baseline learning must beat)."""
    from jepakit.recipe import load_recipe

    recipe = load_recipe(recipe_path, overrides, registry)
    encoder = encoder_from_recipe(recipe, registry)
    digest = hashlib.sha1(json.dumps(_plain(recipe), sort_keys=True).encode()).hexdigest()[:12]
    return source_for(recipe, encoder, f"{recipe.name} random init", f"random:{digest}")


def pixels(image_size: int, in_chans: int, mean: tuple[float, ...] | None = None,
           std: tuple[float, ...] | None = None, clips: ClipDecoding | None = None
           ) -> FeatureSource:
    """Raw pixels (resized, normalised), the baseline any encoder should beat; of the
    clips a video encoder sees when ``clips`` is given."""
    frames = f"{clips.num_frames}x" if clips is not None else ""
    return FeatureSource(None, f"raw pixels {in_chans}x{frames}{image_size}x{image_size}",
                         "pixels", image_size, in_chans, mean, std, clips=clips)


def _plain(recipe: Any) -> Any:
    from jepakit.config import unstructure

    return unstructure(recipe)


# -- encoding ----------------------------------------------------------------------------
_LAYOUT_OK: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def has_blocks(encoder: nn.Module) -> bool:
    """Whether :func:`encode` can read intermediate layers: the encoder offers the
    ``forward_intermediates(images, indices, norm)`` call (the shipped ``vit`` and
    ``timm`` encoders do; timm's API is the model) and its last entry reproduces
    ``encoder(images)`` (checked once on a random image)."""
    if not callable(getattr(encoder, "forward_intermediates", None)):
        return False
    if encoder not in _LAYOUT_OK:
        try:
            h, w = getattr(encoder, "image_size", (224, 224))
            param = next(encoder.parameters())
            x = torch.randn(2, int(getattr(encoder, "in_chans", 3)), int(h), int(w),
                            generator=torch.Generator().manual_seed(0)).to(param)
            with torch.inference_mode():
                manual = _intermediates(encoder, x, 1)[-1]
                direct = encoder(x)
            _LAYOUT_OK[encoder] = manual.shape == direct.shape and bool(
                torch.allclose(manual, direct, atol=1e-4, rtol=1e-3))
        except Exception:  # any mismatch: not a layout we can read
            _LAYOUT_OK[encoder] = False
    return _LAYOUT_OK[encoder]


def _intermediates(encoder: Any, images: torch.Tensor, n: int) -> list[torch.Tensor]:
    """The normed outputs of the last ``n`` blocks, from the encoder's own call."""
    return list(encoder.forward_intermediates(images, indices=n, norm=True))


def encode(encoder: nn.Module | None, images: torch.Tensor, layers: Layers = "last"
           ) -> torch.Tensor:
    """Average-pooled features [B, D] (``last``) or [B, 4D] (``last4``); pixels for None.
    Several clips of each video [B, K, C, T, H, W]: the average of their features."""
    if images.dim() == 6:
        b, k = images.shape[:2]
        return encode(encoder, images.flatten(0, 1), layers).view(b, k, -1).mean(1)
    if encoder is None:
        return images.flatten(1).float()
    if layers == "last4" and has_blocks(encoder):
        return torch.cat([o.mean(1) for o in _intermediates(encoder, images, 4)], dim=-1).float()
    return encoder(images).mean(1).float()


def effective_layers(source: FeatureSource, layers: str) -> str:
    """What ``layers`` gives for this source: ``pixels``, ``last``, or ``lastK`` (K = 4,
    or the depth of a shallower encoder). ``all``: the most that one pass yields."""
    if source.encoder is None:
        return "pixels"
    if layers in ("last4", "all") and has_blocks(source.encoder):
        depth = len(getattr(source.encoder, "blocks", ())) or 4
        return "last4" if depth >= 4 else f"last{depth}"
    if layers == "last4":
        log.warning("this encoder has no forward_intermediates: using the last layer only")
    return "last"


# -- extraction + cache ------------------------------------------------------------------
@attrs.define
class Features:
    x: torch.Tensor
    """[N, D] (or [N, tokens, D]) float16, memory-mapped from the cache."""
    y: torch.Tensor
    """[N] int64."""
    classes: list[str]
    bad_samples: int = 0
    from_cache: bool = False
    keys: torch.Tensor | None = None
    """[N] where each row came from: ``unit index << 32 | position in the unit``."""

    def select(self, idx: torch.Tensor) -> Features:
        return attrs.evolve(self, x=self.x[idx], y=self.y[idx],
                            keys=None if self.keys is None else self.keys[idx])


def _data_stamp(data: LabelledSource) -> str | None:
    """Modification time of a local data set (its index, folder or first shard)."""
    for candidate in (data.path, data.units[0] if data.kind == "shards" and data.units else ""):
        p = Path(str(candidate))
        if candidate and ":" not in str(candidate).split("/", 1)[0] and p.exists():
            return str(p.stat().st_mtime_ns)
    return None


def cache_key(source: FeatureSource, data: LabelledSource, layers: str, crop_ratio: float,
              limit: int | None) -> str:
    """Changes with the weights, the data (path, size, modification time), the transform
    and the layers."""
    spec = {
        "stamp": _data_stamp(data),
        "v": CACHE_VERSION, "source": source.fingerprint, "layers": layers,
        "data": [data.kind, str(Path(data.path).resolve()) if ":" not in data.path
                 else data.path, data.split, data.num_samples],
        "size": source.image_size, "chans": source.in_chans, "mean": source.mean,
        "std": source.std, "crop": crop_ratio, "limit": limit,
        **({"clips": source.clips.key()} if source.clips is not None else {}),
    }
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def extract(source: FeatureSource, data: LabelledSource, layers: Layers = "last",
            batch_size: int = 256, num_workers: int = 0, cache_dir: Path | None = None,
            crop_ratio: float = 1.0, limit: int | None = None, progress: bool = True,
            desc: str = "features", device: torch.device | str = "cpu") -> Features:
    """Features (fp16, memory-mapped) and labels of every image of ``data`` (or its first
    ``limit``), from the cache when an identical extraction was done before.

    One forward pass serves both ``last`` and ``last4``: with the blocks exposed the
    last four layers are always extracted and cached, and ``last`` is their final
    quarter (``norm(last block)`` is exactly ``encoder(images)``)."""
    full = effective_layers(source, "last4" if layers == "last4" else "all")
    mode: Layers = "last4" if full.startswith("last") and full != "last" else "last"
    encoder = source.encoder.to(device) if source.encoder is not None else None
    feats = extract_with(source, data, f"{desc}-{cache_key(source, data, full, crop_ratio, limit)}",
                         lambda images: encode(encoder, images.to(device), mode), batch_size,
                         num_workers, cache_dir, crop_ratio, limit, progress, desc)
    if layers == "last" and full.startswith("last") and full != "last":
        width = int(getattr(source.encoder, "embed_dim", feats.x.shape[1]))
        feats = attrs.evolve(feats, x=feats.x[:, -width:])
    return feats


def extract_with(source: FeatureSource, data: LabelledSource, name: str,
                 fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 256,
                 num_workers: int = 0, cache_dir: Path | None = None, crop_ratio: float = 1.0,
                 limit: int | None = None, progress: bool = True, desc: str = "features"
                 ) -> Features:
    """``fn(images)`` of every image of ``data``, streamed to ``cache_dir/name`` (fp16,
    memory-mapped; :mod:`jepakit.eval.cache`) and resumed there after a kill; read back
    when complete. Without a cache directory, a temporary one (removed once mapped)."""
    from jepakit.eval import cache

    folder = Path(cache_dir) / name if cache_dir is not None else None
    if folder is not None and (done := cache.load(folder)) is not None:
        return Features(done[0], done[1], done[2], done[3], from_cache=True, keys=done[4])
    transform = eval_transform(source.image_size, source.in_chans, source.mean, source.std,
                               crop_ratio)
    # a video encoder reads clips from video shards, and images (one-frame clips) elsewhere
    images = source.clips is None or holds_images(data)  # opens a shard: video sources only
    if source.clips is not None and source.clips.clips_per_video > 1 and images:
        raise JepakitError(f"--clips-per-video {source.clips.clips_per_video}: "
                           f"{data.describe()} holds images, not videos")
    decoder = source.clips.decoder(data) if source.clips is not None and not images else None
    dataset = cache.KeyedImages(data, transform, source.in_chans, limit, decoder=decoder)
    start = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="jepakit-features-") if folder is None else None
    try:
        x, y, classes, bad, keys = cache.extract(folder or Path(str(tmp)), dataset, fn, batch_size,
                                           num_workers, progress, desc)
    except OSError as exc:
        raise JepakitError(f"cannot write features to {folder or tmp}: "
                           f"{exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)  # the mapping outlives the files
    log.info("extracted %d features of shape %s from %s in %.1f s", len(x),
             tuple(x.shape[1:]), data.describe(), time.perf_counter() - start)
    return Features(x, y, list(data.classes) or classes, bad, keys=keys)
