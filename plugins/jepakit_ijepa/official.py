"""Official I-JEPA checkpoints (Assran et al. 2023, arXiv 2301.08243) -> jepakit weights.

The official training code saves one ``torch.save`` dict per checkpoint with the
keys ``encoder``, ``predictor``, ``target_encoder`` (state dicts), ``opt``,
``scaler``, ``epoch``, ``loss``, ``batch_size``, ``world_size`` and ``lr``. The
models were wrapped in DistributedDataParallel, so their keys may start with
``module.``. Its ViT names its parameters as jepakit's ``vit`` does
(``patch_embed.proj``, ``blocks.i.attn.qkv``, ...), except that:

- the fixed 2-D sin-cos position embedding is stored, as a frozen parameter
  (``pos_embed``, ``predictor_pos_embed``), where jepakit recomputes it (a
  non-persistent buffer): it is checked against jepakit's table and dropped;
- the predictor's modules carry a ``predictor_`` prefix (``predictor_embed``,
  ``predictor_blocks``, ``predictor_norm``, ``predictor_proj``).

Shapes give every size but the number of attention heads, which no weight
records: it comes from the paper's model for that width (ViT-Ti 3, S 6, B 12,
L/H/g 16), or from ``num_heads``. The predictor uses the encoder's heads, as
the official code does. The result is loaded strictly into jepakit's ``vit``
and ``ijepa`` predictor before it is written, so a layout it does not know is an
error, never a silent partial load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

from jepakit import __version__, checkpoint
from jepakit.errors import JepakitError
from jepakit.interop.weights import mlp_ratio, one_line_reason
from jepakit.ops import sincos_pos_embed_2d

HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
"""The official model sizes' heads, by width (vit_tiny ... vit_giant)."""
SIZE_BY_WIDTH = {192: "tiny", 384: "small", 768: "base", 1024: "large", 1280: "huge",
                 1408: "giant"}
POS_TOLERANCE = 1e-4
"""How far a stored position table may be from jepakit's sin-cos table."""


@attrs.define
class ConversionReport:
    """What :func:`convert_ijepa_official` found and wrote."""

    output: Path
    encoder: dict[str, Any]
    """The ``vit`` params of the converted encoders."""
    predictor: dict[str, Any] | None
    """The ``ijepa`` predictor params, or None when the checkpoint had no predictor."""
    epoch: int | None
    ignored: list[str]
    """Top-level keys not converted (optimizer, scaler, ...)."""
    pos_embed_error: float
    """Largest difference between a stored position table and jepakit's."""


def _strip(state: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping) or not state:
        raise JepakitError(f"the checkpoint's '{what}' is not a state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key)
        while name.startswith("module."):  # DistributedDataParallel (possibly nested)
            name = name[len("module."):]
        if not isinstance(value, torch.Tensor):
            raise JepakitError(f"the checkpoint's '{what}' holds a non-tensor at '{key}'")
        out[name] = value.detach().float() if value.is_floating_point() else value.detach()
    return out


def _require(state: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise JepakitError(f"the checkpoint's '{what}' has no '{key}': not the official I-JEPA "
                           "ViT layout")
    return state[key]


def _depth(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    ids = {int(k[len(prefix):].split(".", 1)[0]) for k in state if k.startswith(prefix)}
    if not ids or ids != set(range(len(ids))):
        raise JepakitError(f"the blocks '{prefix}*' are missing or not numbered 0..n-1")
    return len(ids)


def _check_pos(table: torch.Tensor | None, dim: int, grid: tuple[int, int], what: str) -> float:
    if table is None:
        return 0.0
    expected = sincos_pos_embed_2d(dim, grid)
    found = table.reshape(-1, dim)
    if found.shape != expected.shape:
        raise JepakitError(f"{what}: {found.shape[0]} positions, expected {grid[0]}x{grid[1]}")
    error = float((found - expected).abs().max())
    if error > POS_TOLERANCE:
        raise JepakitError(f"{what} is not the fixed 2-D sin-cos table jepakit's vit uses (max "
                           f"difference {error:.3g}): a learned or interpolated position "
                           "embedding cannot be converted")
    return error


def encoder_params(state: Mapping[str, torch.Tensor], num_heads: int | None = None,
                   image_size: int | None = None) -> dict[str, Any]:
    """jepakit ``vit`` params from an official encoder state dict (keys without ``module.``)."""
    weight = _require(state, "patch_embed.proj.weight", "encoder")
    dim, in_chans, patch, patch_w = weight.shape
    if patch != patch_w:
        raise JepakitError(f"non-square patches ({patch}x{patch_w}) are not supported")
    depth = _depth(state, "blocks.")
    hidden = _require(state, "blocks.0.mlp.fc1.weight", "encoder").shape[0]
    heads = num_heads or HEADS_BY_WIDTH.get(dim)
    if heads is None:
        raise JepakitError(f"width {dim} is not an official I-JEPA model size: give the number "
                           "of attention heads (num_heads=N), no weight records it")
    if "pos_embed" in state:
        n = state["pos_embed"].reshape(-1, dim).shape[0]
        side = math.isqrt(n)
        if side * side != n:
            raise JepakitError(f"pos_embed holds {n} positions, not a square grid")
        size = side * patch
        if image_size is not None and image_size != size:
            raise JepakitError(f"--image-size {image_size} disagrees with the checkpoint's "
                               f"{side}x{side} position table at patch {patch} ({size} px)")
    elif image_size is None:
        raise JepakitError("the encoder stores no pos_embed: give the image size (--image-size)")
    else:
        size = image_size
    return {"size": SIZE_BY_WIDTH.get(dim, "tiny"), "image_size": int(size),
            "patch_size": int(patch), "in_chans": int(in_chans), "embed_dim": int(dim),
            "depth": depth, "num_heads": int(heads), "mlp_ratio": mlp_ratio(hidden, dim)}


def encoder_state(state: Mapping[str, torch.Tensor], params: Mapping[str, Any],
                  what: str = "encoder") -> tuple[dict[str, torch.Tensor], float]:
    """The jepakit ``vit`` state dict (names are shared; the position table is
    checked and dropped) and the position table's largest difference."""
    grid = (params["image_size"] // params["patch_size"],) * 2
    error = _check_pos(state.get("pos_embed"), params["embed_dim"], grid, f"{what}.pos_embed")
    return {k: v for k, v in state.items() if k != "pos_embed"}, error


PREDICTOR_RENAMES = (("predictor_embed.", "embed."), ("predictor_blocks.", "blocks."),
                     ("predictor_norm.", "norm."), ("predictor_proj.", "proj."))


def predictor_params(state: Mapping[str, torch.Tensor], num_heads: int) -> dict[str, Any]:
    weight = _require(state, "predictor_embed.weight", "predictor")
    dim = int(weight.shape[0])
    hidden = _require(state, "predictor_blocks.0.mlp.fc1.weight", "predictor").shape[0]
    return {"embed_dim": dim, "depth": _depth(state, "predictor_blocks."),
            "num_heads": int(num_heads), "mlp_ratio": mlp_ratio(hidden, dim)}


def predictor_state(state: Mapping[str, torch.Tensor], params: Mapping[str, Any],
                    grid: tuple[int, int]) -> tuple[dict[str, torch.Tensor], float]:
    error = _check_pos(state.get("predictor_pos_embed"), params["embed_dim"], grid,
                       "predictor.predictor_pos_embed")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "predictor_pos_embed":
            continue
        name = key
        for old, new in PREDICTOR_RENAMES:
            if key.startswith(old):
                name = new + key[len(old):]
                break
        out[name] = value
    return out, error


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise JepakitError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JepakitError(f"{path} is not a readable checkpoint (torch.load with "
                           f"weights_only=True: {type(exc).__name__}: {one_line_reason(exc)})") from None
    if not isinstance(raw, dict):
        raise JepakitError(f"{path} holds a {type(raw).__name__}, not a checkpoint dict")
    if "encoder" not in raw and "target_encoder" not in raw:
        if any(str(k).endswith("patch_embed.proj.weight") for k in raw):
            return {"target_encoder": raw}  # a bare encoder state dict
        raise JepakitError(f"{path} has neither 'encoder' nor 'target_encoder': not an "
                           f"official I-JEPA checkpoint (keys: {', '.join(map(str, raw))})")
    return raw


def _verify(kind: str, name: str, params: dict[str, Any], state: dict[str, torch.Tensor],
            registry: Any, **context: Any) -> None:
    with torch.device("meta"):
        module = registry.create(kind, name, params, path=f"{kind}.params", **context)
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise JepakitError(f"the converted {kind} does not load into jepakit's '{name}': "
                           f"{' '.join(s.strip() for s in first[:3])}") from None


def convert_ijepa_official(src: str | Path, dst: str | Path, *, num_heads: int | None = None,
                           image_size: int | None = None, registry: Any = None,
                           overwrite: bool = False) -> ConversionReport:
    """Convert an official I-JEPA checkpoint into a jepakit weights file.

    The file holds ``encoder``, ``target_encoder`` and (when present) ``predictor``
    state dicts for jepakit's ``vit`` and ``ijepa`` predictor, and a ``recipe`` with
    their ``encoder`` and ``predictor`` sections, so ``jepakit export`` and
    :func:`jepakit.interop.encoder_from_state` read it like a training checkpoint.
    """
    from jepakit.registry import default_registry

    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:
        raise JepakitError(f"{dst} exists; pass --overwrite to replace it")
    registry = registry or default_registry()
    raw = _load(src)
    target_raw = _strip(raw.get("target_encoder") or raw["encoder"], "target_encoder")
    online_raw = _strip(raw["encoder"], "encoder") if "encoder" in raw else target_raw
    params = encoder_params(target_raw, num_heads, image_size)
    target, err_t = encoder_state(target_raw, params, "target_encoder")
    online, err_o = encoder_state(online_raw, params, "encoder")
    _verify("encoder", "vit", params, target, registry)
    _verify("encoder", "vit", params, online, registry)
    out: dict[str, Any] = {"encoder": online, "target_encoder": target}
    recipe: dict[str, Any] = {"name": f"ijepa-official-{src.name}",
                              "encoder": {"name": "vit", "params": params}}
    pred_params: dict[str, Any] | None = None
    err_p = 0.0
    if raw.get("predictor"):
        pred_raw = _strip(raw["predictor"], "predictor")
        pred_params = predictor_params(pred_raw, params["num_heads"])
        grid = (params["image_size"] // params["patch_size"],) * 2
        pred, err_p = predictor_state(pred_raw, pred_params, grid)
        _verify("predictor", "ijepa", pred_params, pred, registry,
                embed_dim=params["embed_dim"], patch_grid=grid)
        out["predictor"] = pred
        recipe["predictor"] = {"name": "ijepa", "params": pred_params}
    epoch = raw.get("epoch")
    epoch = int(epoch) if isinstance(epoch, (int, float)) else None
    ignored = sorted(str(k) for k in raw if k not in ("encoder", "target_encoder", "predictor"))
    out.update({
        "format": "jepakit-weights",
        "step": 0,
        "recipe": recipe,
        "source": {"kind": "ijepa-official", "path": str(src), "epoch": epoch},
        "jepakit_version": __version__,
    })
    checkpoint.save_atomic(out, dst)
    return ConversionReport(output=dst, encoder=params, predictor=pred_params, epoch=epoch,
                            ignored=ignored, pos_embed_error=max(err_t, err_o, err_p))


@attrs.define
class OfficialConvertConfig:
    """``jepakit convert ijepa-official IN OUT [num_heads=N] [image_size=N]``."""

    num_heads: int | None = attrs.field(default=None, validator=attrs.validators.optional(
        attrs.validators.gt(0)))
    """Attention heads, for widths that are not an official model size."""
    image_size: int | None = attrs.field(default=None, validator=attrs.validators.optional(
        attrs.validators.gt(0)))
    """Image size, only for checkpoints that store no position table."""


def convert_official(config: OfficialConvertConfig, *, source: Path, output: Path,
                     overwrite: bool = False) -> list[str]:
    """The registered converter (``jepakit_converters``): converts and reports in lines."""
    report = convert_ijepa_official(source, output, num_heads=config.num_heads,
                                    image_size=config.image_size, overwrite=overwrite)
    enc = report.encoder
    grid = enc["image_size"] // enc["patch_size"]
    lines = [f"encoder: vit width {enc['embed_dim']}, depth {enc['depth']}, heads "
             f"{enc['num_heads']}, patch {enc['patch_size']}, {enc['image_size']} px "
             f"({grid}x{grid} grid)"]
    if report.predictor:
        pred = report.predictor
        lines.append(f"predictor: ijepa width {pred['embed_dim']}, depth {pred['depth']}, "
                     f"heads {pred['num_heads']}")
    else:
        lines.append("predictor: none in the checkpoint")
    lines.append(f"position tables match jepakit's sin-cos (max difference "
                 f"{report.pos_embed_error:.2g})")
    if report.ignored:
        lines.append(f"not converted: {', '.join(report.ignored)}")
    epoch = f" (epoch {report.epoch})" if report.epoch is not None else ""
    lines.append(f"wrote {report.output}{epoch}")
    return lines
