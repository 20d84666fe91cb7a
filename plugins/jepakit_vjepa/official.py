"""Released V-JEPA 2 checkpoints (Assran et al. 2025, facebookresearch/vjepa2) -> jepakit
weights: ``jepakit convert vjepa2 IN.pt OUT.pt [key=value ...]``.

The official training code saves one ``torch.save`` dict with ``encoder``, ``predictor``
and ``target_encoder`` state dicts (plus ``opt``, ``scaler``, ``epoch``, ...). Every
parameter name is ``module.backbone.<name>`` (DistributedDataParallel around the
multi-sequence wrappers); both prefixes are stripped. The encoder's names equal
``vit_video``'s; the predictor's carry a ``predictor_`` prefix (``predictor_embed``,
``predictor_blocks``, ``predictor_norm``, ``predictor_proj``) and its mask tokens are
``mask_tokens.<i>``, as ``vjepa``'s.

Under RoPE the model has no position table, yet released files may store a ``pos_embed``
(the hub loader loads with ``strict=False`` for that reason): it is dropped and reported.
Under ``positions=sincos`` (V-JEPA 1 checkpoints) the stored table must equal jepakit's.

Nothing else is loose. Every missing or unexpected key is an error that names it (a
released loader's ``strict=False`` once left half a predictor at its initial values in
silence), and the result is loaded strictly into jepakit's modules before it is written.
The file is read with ``torch.load(weights_only=True)``: it cannot run code.

No weight records the number of attention heads, the frame count or the image size:
heads come from the released models' widths (ViT-L and H 16; g 22 and G 26, the
``*_xformers`` variants the hub loads) unless ``num_heads`` is given; ``image_size`` and
``num_frames`` default to V-JEPA 2 pretraining's 256 px and 16 frames (RoPE works at any
size; they set the converted encoder's recipe section).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from attrs import validators as v

from jepakit import __version__, checkpoint
from jepakit.errors import JepakitError
from jepakit.interop.weights import mlp_ratio, one_line_reason

from .positions import sincos_pos_embed_3d

HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 22, 1664: 26}
"""The released models' heads by width (vjepa2 ``ARCH_NAME_MAP``: vit_giant_xformers,
vit_gigantic_xformers for g and G)."""
SIZE_BY_WIDTH = {192: "tiny", 384: "small", 768: "base", 1024: "large", 1280: "huge",
                 1408: "giant", 1664: "gigantic"}
PREFIXES = ("module.", "backbone.")
POS_TOLERANCE = 1e-4
PREDICTOR_RENAMES = (("predictor_embed.", "embed."), ("predictor_blocks.", "blocks."),
                     ("predictor_norm.", "norm."), ("predictor_proj.", "proj."))


@attrs.define
class VJEPA2ConvertConfig:
    """``jepakit convert vjepa2 IN OUT [image_size=N] [num_frames=N] [num_heads=N] ...``."""

    image_size: int = attrs.field(default=256, validator=v.gt(0))
    num_frames: int = attrs.field(default=16, validator=v.gt(0))
    num_heads: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Encoder heads, for widths the released models do not have (or ViT-g with 16)."""
    predictor_num_heads: int = attrs.field(default=12, validator=v.gt(0))
    """The released predictors' 12 (width 384)."""
    positions: Literal["rope", "sincos"] = attrs.field(default="rope",
                                                       validator=v.in_(("rope", "sincos")))
    """``rope`` (V-JEPA 2), or ``sincos`` for V-JEPA 1 checkpoints of the same layout."""
    uniform_power: bool = False
    """sincos only: the table's channel split (V-JEPA 1 configs' ``uniform_power``)."""


def strip(state: Any, what: str) -> dict[str, torch.Tensor]:
    """Names without their ``module.``/``backbone.`` prefixes; tensors only."""
    if not isinstance(state, Mapping) or not state:
        raise JepakitError(f"the checkpoint's '{what}' is not a state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key)
        while name.startswith(PREFIXES):
            name = name.split(".", 1)[1]
        if not isinstance(value, torch.Tensor):
            raise JepakitError(f"the checkpoint's '{what}' holds a non-tensor at '{key}'")
        if name in out:
            raise JepakitError(f"the checkpoint's '{what}' holds '{name}' twice (with and "
                               "without a module./backbone. prefix)")
        out[name] = value.detach().float() if value.is_floating_point() else value.detach()
    return out


def _require(state: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise JepakitError(f"the checkpoint's '{what}' has no '{key}': not the V-JEPA 2 layout")
    return state[key]


def _depth(state: Mapping[str, torch.Tensor], prefix: str, what: str) -> int:
    ids = {k[len(prefix):].split(".", 1)[0] for k in state if k.startswith(prefix)}
    if not ids or not all(i.isdigit() for i in ids) or {int(i) for i in ids} != set(range(len(ids))):
        raise JepakitError(f"the checkpoint's '{what}' blocks '{prefix}*' are missing or not "
                           "numbered 0..n-1")
    return len(ids)


def encoder_params(state: Mapping[str, torch.Tensor], config: VJEPA2ConvertConfig,
                   ) -> dict[str, Any]:
    """``vit_video`` params from an encoder state dict (names stripped)."""
    weight = _require(state, "patch_embed.proj.weight", "encoder")
    if weight.ndim != 5:
        raise JepakitError(f"patch_embed.proj.weight has shape {tuple(weight.shape)}: not a "
                           "Conv3d tubelet embedding (an image-only checkpoint?)")
    dim, in_chans, tubelet, patch, patch_w = (int(s) for s in weight.shape)
    if patch != patch_w:
        raise JepakitError(f"non-square patches ({patch}x{patch_w}) are not supported")
    heads = config.num_heads or HEADS_BY_WIDTH.get(dim)
    if heads is None:
        raise JepakitError(f"width {dim} is not a released V-JEPA 2 size: give the number of "
                           "attention heads (num_heads=N), no weight records it")
    hidden = int(_require(state, "blocks.0.mlp.fc1.weight", "encoder").shape[0])
    return {"size": SIZE_BY_WIDTH.get(dim, "tiny"), "image_size": config.image_size,
            "patch_size": patch, "num_frames": config.num_frames, "tubelet": tubelet,
            "in_chans": in_chans, "positions": config.positions,
            "uniform_power": config.uniform_power, "embed_dim": dim,
            "depth": _depth(state, "blocks.", "encoder"), "num_heads": int(heads),
            "mlp_ratio": mlp_ratio(hidden, dim)}


def _grid(params: Mapping[str, Any]) -> tuple[int, int, int]:
    side = params["image_size"] // params["patch_size"]
    return params["num_frames"] // params["tubelet"], side, side


def position_table(state: dict[str, torch.Tensor], key: str, dim: int,
                   grid: tuple[int, int, int], config: VJEPA2ConvertConfig, what: str) -> str:
    """Drop a stored position table: unused under RoPE; under sin-cos checked against
    jepakit's. Returns a report line ('' when there was none)."""
    table = state.pop(key, None)
    if config.positions == "rope":
        return "" if table is None else (f"{what}.{key} {tuple(table.shape)}: stored, unused "
                                         "under RoPE, dropped")
    if table is None:
        raise JepakitError(f"{what} stores no {key}: positions=sincos needs the sin-cos table "
                           "(a RoPE checkpoint converts with positions=rope)")
    found = table.reshape(-1, dim)
    n = grid[0] * grid[1] * grid[2]
    if found.shape[0] != n:
        raise JepakitError(f"{what}.{key} holds {found.shape[0]} positions, the settings give "
                           f"{grid[0]}x{grid[1]}x{grid[2]} = {n}: set num_frames= and "
                           "image_size= to the checkpoint's")
    error = float((found - sincos_pos_embed_3d(dim, grid, config.uniform_power)).abs().max())
    if error > POS_TOLERANCE:
        raise JepakitError(f"{what}.{key} is not jepakit's 3-D sin-cos table (max difference "
                           f"{error:.3g}; try uniform_power={not config.uniform_power})")
    return f"{what}.{key}: equals jepakit's 3-D sin-cos table (max difference {error:.2g})"


def predictor_params(state: Mapping[str, torch.Tensor], config: VJEPA2ConvertConfig,
                     ) -> dict[str, Any]:
    weight = _require(state, "predictor_embed.weight", "predictor")
    dim = int(weight.shape[0])
    hidden = int(_require(state, "predictor_blocks.0.mlp.fc1.weight", "predictor").shape[0])
    tokens = {k.split(".")[1] for k in state if k.startswith("mask_tokens.")}
    if not tokens:
        raise JepakitError("the checkpoint's 'predictor' has no mask_tokens.*: not the V-JEPA 2 "
                           "predictor (use_mask_tokens: true)")
    return {"embed_dim": dim, "depth": _depth(state, "predictor_blocks.", "predictor"),
            "num_heads": config.predictor_num_heads, "mlp_ratio": mlp_ratio(hidden, dim),
            "num_mask_tokens": len(tokens), "positions": config.positions,
            "uniform_power": config.uniform_power}


def rename_predictor(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key
        for old, new in PREDICTOR_RENAMES:
            if key.startswith(old):
                name = new + key[len(old):]
                break
        out[name] = value
    return out


def verify(kind: str, name: str, params: dict[str, Any], state: dict[str, torch.Tensor],
           registry: Any, what: str, **context: Any) -> None:
    """Refuse a partial load: every missing and unexpected key named, then a strict load
    (which also checks every shape)."""
    with torch.device("meta"):
        module = registry.create(kind, name, params, path=f"{kind}.params", **context)
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise JepakitError(f"the checkpoint's '{what}' does not convert to jepakit's '{name}' "
                           f"in full: {'; '.join(parts)}")
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise JepakitError(f"the checkpoint's '{what}' does not load into jepakit's '{name}': "
                           f"{' '.join(s.strip() for s in lines[:3])}") from None


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise JepakitError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JepakitError(f"{path} is not a readable checkpoint (torch.load with weights_only="
                           f"True: {type(exc).__name__}: {one_line_reason(exc)})") from None
    if not isinstance(raw, dict):
        raise JepakitError(f"{path} holds a {type(raw).__name__}, not a checkpoint dict")
    if "encoder" not in raw and "target_encoder" not in raw:
        raise JepakitError(f"{path} has neither 'encoder' nor 'target_encoder': not a V-JEPA 2 "
                           f"checkpoint (keys: {', '.join(map(str, raw))})")
    return raw


def convert_vjepa2_file(src: Path, dst: Path, config: VJEPA2ConvertConfig, *,
                        registry: Any = None, overwrite: bool = False) -> list[str]:
    """Convert and write; returns the report lines."""
    from jepakit.registry import default_registry

    if dst.exists() and not overwrite:
        raise JepakitError(f"{dst} exists; pass --overwrite to replace it")
    registry = registry or default_registry()
    raw = load(src)
    encoders = {k: strip(raw[k], k) for k in ("encoder", "target_encoder") if raw.get(k)}
    if not encoders:
        raise JepakitError(f"{src}: 'encoder' and 'target_encoder' are empty")
    params = encoder_params(next(iter(encoders.values())), config)
    grid = _grid(params)
    lines = [f"encoder: vit_video width {params['embed_dim']}, depth {params['depth']}, heads "
             f"{params['num_heads']}, tubelet {params['tubelet']}x{params['patch_size']}x"
             f"{params['patch_size']}, {config.positions}; recipe at {params['num_frames']} "
             f"frames, {params['image_size']} px ({grid[0]}x{grid[1]}x{grid[2]} grid)"]
    out: dict[str, Any] = {}
    for key, state in encoders.items():
        note = position_table(state, "pos_embed", params["embed_dim"], grid, config, key)
        verify("encoder", "vit_video", params, state, registry, key)
        out[key] = state
        lines += [note] if note else []
    for key, other in (("target_encoder", "encoder"), ("encoder", "target_encoder")):
        if key not in out:
            out[key] = out[other]
            lines.append(f"{key}: none in the checkpoint, the {other} is used")
    recipe: dict[str, Any] = {"name": f"vjepa2-{src.name}",
                              "encoder": {"name": "vit_video", "params": params}}
    if raw.get("predictor"):
        pred = strip(raw["predictor"], "predictor")
        pparams = predictor_params(pred, config)
        note = position_table(pred, "predictor_pos_embed", pparams["embed_dim"], grid, config,
                              "predictor")
        pred = rename_predictor(pred)
        verify("predictor", "vjepa", pparams, pred, registry, "predictor",
               embed_dim=params["embed_dim"], patch_grid=grid)
        out["predictor"] = pred
        recipe["predictor"] = {"name": "vjepa", "params": pparams}
        lines.append(f"predictor: vjepa width {pparams['embed_dim']}, depth {pparams['depth']}, "
                     f"heads {pparams['num_heads']}, {pparams['num_mask_tokens']} mask tokens")
        lines += [note] if note else []
    else:
        lines.append("predictor: none in the checkpoint")
    epoch = raw.get("epoch")
    epoch = int(epoch) if isinstance(epoch, (int, float)) else None
    ignored = sorted(str(k) for k in raw if k not in ("encoder", "target_encoder", "predictor"))
    out.update({"format": "jepakit-weights", "step": 0, "recipe": recipe,
                "source": {"kind": "vjepa2", "path": str(src), "epoch": epoch},
                "jepakit_version": __version__})
    checkpoint.save_atomic(out, dst)
    if ignored:
        lines.append(f"not converted: {', '.join(ignored)}")
    lines.append(f"wrote {dst}" + (f" (epoch {epoch})" if epoch is not None else ""))
    return lines


def convert_vjepa2(config: VJEPA2ConvertConfig, *, source: Path, output: Path,
                   overwrite: bool = False) -> list[str]:
    """The registered converter (``jepakit_converters``)."""
    return convert_vjepa2_file(Path(source), Path(output), config, overwrite=overwrite)
