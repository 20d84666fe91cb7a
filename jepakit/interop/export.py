"""Encoders out of jepakit: safetensors, and timm's class-token-free, average-pooled ViTs.

I-JEPA evaluates the average-pooled target encoder (Assran et al. 2023,
arXiv 2301.08243, section 5), so that is what leaves by default.

- ``safetensors``: the encoder's own state dict, with its recipe section (name and
  params) in the file's metadata, so :func:`load_safetensors_encoder` rebuilds it.
  safetensors holds tensors only (no pickle), which is why it is the format to share.
- ``timm``: a folder with ``model.safetensors`` and timm's ``config.json``; timm builds
  it with ``timm.create_model("local-dir:FOLDER", pretrained=True)``, or one loads the
  weights strictly into ``timm.create_model(architecture, **model_args)``. jepakit's
  ``vit`` is timm's ViT with ``class_token=False, global_pool='avg', fc_norm=False``
  (the ``vit_*_gap`` family, which timm also uses for the official I-JEPA weights) and
  the same parameter names; only the position table, a fixed buffer in jepakit, has to
  be written as timm's ``pos_embed`` parameter. An encoder of another kind can offer a
  ``timm_export()`` method (the ``timm`` encoder plugin does).

Before writing, the timm export builds the timm model, loads the weights strictly
and compares its features with the jepakit encoder's on random images.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jepakit import __version__, checkpoint
from jepakit.errors import JepakitError
from jepakit.interop.weights import mlp_ratio, one_line_reason

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The normalisation jepakit's data pipeline applies to 3-channel images."""

GAP_MODELS = {
    # name: (patch, width, depth, heads, image size); timm's vit_*_gap ViTs with qkv bias
    "vit_base_patch16_gap_224": (16, 768, 12, 16, 224),
    "vit_huge_patch14_gap_224": (14, 1280, 32, 16, 224),
    "vit_huge_patch16_gap_448": (16, 1280, 32, 16, 448),
    "vit_giant_patch16_gap_224": (16, 1408, 40, 16, 224),
}


# -- reading a run or a checkpoint -------------------------------------------------------

def load_source(source: str | Path) -> tuple[dict[str, Any], Path]:
    """The state of a checkpoint file, or of a run directory's newest loadable
    checkpoint (``RUN/checkpoints/step_*.pt``); returns (state, path)."""
    path = Path(source)
    if path.is_dir():
        for directory in (path / "checkpoints", path):
            if checkpoint.list_checkpoints(directory):
                found = checkpoint.latest_valid(directory)
                if found is None:
                    raise JepakitError(f"no checkpoint in {directory} is readable")
                ckpt, state = found
                return state, ckpt
        raise JepakitError(f"{path} is a directory without checkpoints (expected a run "
                           "directory with checkpoints/step_*.pt, or a checkpoint file)")
    if not path.exists():
        raise JepakitError(f"no such run directory or checkpoint: {path}")
    try:
        return checkpoint.load(path), path
    except JepakitError as exc:  # torch.load's reasons span lines; the CLI shows one
        text = str(exc)
        first = text.splitlines()[0] if text else "unreadable"
        if "\n" not in text:
            raise
        head = first.split(": ", 1)[0] if "unreadable" in first else first
        raise JepakitError(f"{head}: {one_line_reason(text)}") from None


def encoder_spec(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{name, params}`` recipe section of the checkpoint's encoder."""
    recipe = state.get("recipe") if isinstance(state, Mapping) else None
    spec = recipe.get("encoder") if isinstance(recipe, Mapping) else None
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise JepakitError("the checkpoint has no recipe with an encoder section: not a jepakit "
                           "checkpoint (convert an official I-JEPA one with "
                           "`jepakit convert ijepa-official`)")
    return {"name": str(spec["name"]), "params": dict(spec.get("params") or {})}


def _build(spec: Mapping[str, Any], registry: Any) -> nn.Module:
    """The encoder of a recipe section; weights come from the checkpoint, so a
    ``pretrained: true`` param (timm's download) is turned off."""
    params = dict(spec["params"])
    if params.get("pretrained") is True:
        params["pretrained"] = False
    module: nn.Module = registry.create("encoder", spec["name"], params, path="encoder.params")
    return module


def encoder_from_state(state: Mapping[str, Any], which: str = "target", registry: Any = None,
                       ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the checkpoint's target (or online) encoder in eval mode; returns it
    and its recipe section."""
    from jepakit.registry import default_registry

    key = {"target": "target_encoder", "online": "encoder"}.get(which)
    if key is None:
        raise JepakitError(f"encoder: expected 'target' or 'online', got '{which}'")
    spec = encoder_spec(state)
    if key == "target_encoder" and key not in state and "encoder" in state:
        key = "encoder"  # a method without a teacher copy (LeJEPA): the target is the encoder
    if key not in state:
        raise JepakitError(f"the checkpoint holds no '{key}'")
    encoder = _build(spec, registry or default_registry())
    try:
        encoder.load_state_dict(state[key], strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise JepakitError(f"the checkpoint's {key} does not fit the '{spec['name']}' encoder "
                           f"of its recipe: {' '.join(s.strip() for s in lines[:3])}") from None
    return encoder.eval(), spec


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise JepakitError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise JepakitError(f"the directory of {out} does not exist")


def _plain(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous, unshared copies: what safetensors accepts."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


# -- safetensors --------------------------------------------------------------------------

def export_safetensors(encoder: nn.Module, spec: Mapping[str, Any], out: str | Path,
                       metadata: Mapping[str, str] | None = None, overwrite: bool = False) -> Path:
    """Write the encoder's state dict to ``out``; the metadata ``jepakit.encoder``
    holds its recipe section as JSON."""
    from safetensors.torch import save_file

    out = Path(out)
    _check_output(out, overwrite)
    meta = {"format": "pt", "jepakit.encoder": json.dumps(dict(spec)),
            "jepakit.version": __version__, **dict(metadata or {})}
    save_file(_plain(encoder.state_dict()), str(out), metadata=meta)
    return out


def load_safetensors_encoder(path: str | Path, registry: Any = None) -> nn.Module:
    """Rebuild an encoder written by :func:`export_safetensors` (eval mode)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from jepakit.registry import default_registry

    path = Path(path)
    if not path.is_file():
        raise JepakitError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as exc:
        raise JepakitError(f"{path} is not a safetensors file: {exc}") from None
    if "jepakit.encoder" not in meta:
        raise JepakitError(f"{path} was not written by jepakit export (no jepakit.encoder "
                           "metadata)")
    try:  # metadata is data: any shape must end in a one-line error
        spec = encoder_spec({"recipe": {"encoder": json.loads(meta["jepakit.encoder"])}})
    except ValueError as exc:
        raise JepakitError(f"{path}: unreadable jepakit.encoder metadata: {exc}") from None
    encoder = _build(spec, registry or default_registry())
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise JepakitError(f"{path}: the weights do not fit its '{spec['name']}' encoder: "
                           f"{str(exc).strip().splitlines()[0]}") from None
    return encoder.eval()


# -- timm ----------------------------------------------------------------------------------

def _vit_layout(encoder: nn.Module) -> dict[str, Any]:
    """timm's layout of a jepakit-``vit``-shaped encoder, found by its structure."""
    try:
        proj = encoder.patch_embed.proj  # type: ignore[union-attr]
        blocks = list(encoder.blocks)  # type: ignore[arg-type, union-attr]
        pos = encoder.pos_embed  # type: ignore[union-attr]
        norm = encoder.norm  # type: ignore[union-attr]
        heads = int(blocks[0].attn.num_heads)
        qkv = blocks[0].attn.qkv
        hidden = int(blocks[0].mlp.fc1.out_features)
    except (AttributeError, IndexError, TypeError):
        raise JepakitError(f"{type(encoder).__name__} has neither timm's ViT layout nor a "
                           "timm_export() method: it cannot be exported for timm") from None
    if not isinstance(proj, nn.Conv2d) or not isinstance(pos, torch.Tensor) \
            or qkv.bias is None or not isinstance(norm, nn.LayerNorm) or norm.eps != 1e-6:
        raise JepakitError(f"{type(encoder).__name__} is not a ViT timm's vit_*_gap models can "
                           "hold (conv patches, fixed position table, qkv bias, LayerNorm eps 1e-6)")
    dim = int(proj.out_channels)
    patch = int(proj.kernel_size[0])
    size = tuple(int(s) for s in encoder.image_size)  # type: ignore[union-attr]
    args: dict[str, Any] = {
        "img_size": size[0] if size[0] == size[1] else list(size), "patch_size": patch,
        "in_chans": int(proj.in_channels), "embed_dim": dim, "depth": len(blocks),
        "num_heads": heads, "mlp_ratio": mlp_ratio(hidden, dim), "qkv_bias": True, "class_token": False,
        "global_pool": "avg", "fc_norm": False, "num_classes": 0,
    }
    key = (patch, dim, len(blocks), heads, size[0])
    architecture = next((name for name, shape in GAP_MODELS.items() if shape == key),
                        "vit_base_patch16_gap_224")
    state = dict(encoder.state_dict())
    state["pos_embed"] = pos.detach().reshape(1, -1, dim)
    return {"architecture": architecture, "model_args": args, "state_dict": state}


def timm_layout(encoder: nn.Module) -> dict[str, Any]:
    """``{architecture, model_args, state_dict}`` for ``timm.create_model(architecture,
    **model_args).load_state_dict(state_dict, strict=True)``."""
    export = getattr(encoder, "timm_export", None)
    return export() if callable(export) else _vit_layout(encoder)


def _timm_config(layout: Mapping[str, Any], model: nn.Module) -> dict[str, Any]:
    args = layout["model_args"]
    chans = int(args.get("in_chans", 3))
    size = args.get("img_size", 224)
    size = [size, size] if isinstance(size, int) else list(size)
    mean = IMAGENET_MEAN if chans == 3 else (sum(IMAGENET_MEAN) / 3,) * chans
    std = IMAGENET_STD if chans == 3 else (sum(IMAGENET_STD) / 3,) * chans
    return {
        "architecture": layout["architecture"],
        "num_classes": 0,
        "num_features": int(getattr(model, "num_features", 0)),
        "global_pool": str(getattr(model, "global_pool", "")),
        "model_args": dict(args),
        "pretrained_cfg": {
            "tag": "jepakit", "custom_load": False, "input_size": [chans, *size],
            "fixed_input_size": not args.get("dynamic_img_size", False),
            "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
            "mean": list(mean), "std": list(std), "num_classes": 0,
            "first_conv": "patch_embed.proj", "classifier": "head",
        },
    }


@torch.no_grad()
def compare_with_timm(encoder: nn.Module, model: nn.Module, images: torch.Tensor) -> float:
    """Largest difference between the jepakit encoder's patch tokens and timm's."""
    ours = encoder(images)
    forward_features: Any = getattr(model, "forward_features")  # noqa: B009 (timm's method)
    theirs = forward_features(images)[:, int(getattr(model, "num_prefix_tokens", 0)):]
    if ours.shape != theirs.shape:
        raise JepakitError(f"timm gives tokens {tuple(theirs.shape)}, the encoder "
                           f"{tuple(ours.shape)}")
    return float((ours.float() - theirs.float()).abs().max())


def export_timm(encoder: nn.Module, out_dir: str | Path, verify: bool = True,
                overwrite: bool = False, tolerance: float = 1e-4) -> dict[str, Any]:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json``; returns
    ``{architecture, model_args, max_difference}`` (None when not verified)."""
    import timm
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise JepakitError(f"{out} exists and is not an empty directory; pass --overwrite")
    layout = timm_layout(encoder)
    state = _plain(layout["state_dict"])
    try:
        model = timm.create_model(layout["architecture"], pretrained=False, **layout["model_args"])
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise JepakitError(f"timm's {layout['architecture']} does not take the exported weights: "
                           f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
    model.eval()
    difference = None
    if verify:
        size = tuple(int(s) for s in getattr(encoder, "image_size"))  # noqa: B009
        chans = int(getattr(encoder, "in_chans", 3))
        images = torch.randn(1, chans, *size, generator=torch.Generator().manual_seed(0))
        difference = compare_with_timm(encoder.eval(), model, images)
        if difference > tolerance:
            raise JepakitError(f"timm's features differ from the encoder's by {difference:.3g} "
                               f"(> {tolerance}): the export is wrong, nothing was written")
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"))
    config = _timm_config(layout, model)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return {"architecture": layout["architecture"], "model_args": layout["model_args"],
            "max_difference": difference}
