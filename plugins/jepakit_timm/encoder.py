"""A timm Vision Transformer behind the jepakit encoder contract.

Why a wrapper and not a copy of timm's ViT: users arrive with timm models (and
timm's pretrained weights), and everything timm offers for its ViT family
(register tokens, class tokens, layer scale, qk-norm, other widths and depths)
then trains as a JEPA encoder without a line of engine code.

The JEPA context encoder needs to run only on the kept patches. timm's
``forward_features`` has no such input, so this module runs timm's own stages
in order and drops the patches in between: patch embedding, position embedding
(with prefix tokens such as a class token or registers), then the gather of the
kept patches, the blocks and the final norm. Prefix tokens always stay in the
sequence (they carry no position of their own) and are removed from the output,
which holds one token per patch as the contract asks.

Differences from the shipped ``vit`` encoder, on purpose or by timm's design:

- every patch is embedded before the gather (timm's patch embedding may be a
  conv stem or carry a norm), which costs one conv over the whole image;
- with ``dynamic_img_size`` (the default) images of other sizes work too, timm
  resampling the position table; keep indices then refer to that image's grid;
- timm learns its position embedding; ``fixed_pos_embed: true`` replaces it with
  the fixed 2-D sin-cos table of I-JEPA (Assran et al. 2023, arXiv 2301.08243)
  and freezes it.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from attrs import validators as v
from torch import nn

from jepakit.errors import ConfigError, JepakitError, did_you_mean
from jepakit.ops import gather_tokens, sincos_pos_embed_2d


def _timm() -> Any:
    import timm  # heavy: imported only when a timm encoder is used

    return timm


@attrs.define
class TimmEncoderConfig:
    """Which timm model to build, and the keyword arguments it is built with."""

    model: str = "vit_small_patch16_224"
    """A timm model name of the VisionTransformer family (``timm.list_models('vit_*')``)."""
    image_size: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Training image size (timm's ``img_size``); None keeps the model's default."""
    patch_size: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    """Patch size; None keeps the model's default."""
    in_chans: int = attrs.field(default=3, validator=v.gt(0))
    pretrained: bool = False
    """Load timm's pretrained weights (downloads them: off by default)."""
    drop_path: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(1)])
    """Stochastic depth rate (timm's ``drop_path_rate``)."""
    dynamic_img_size: bool = True
    """Accept other image sizes at run time (timm resamples the position embedding)."""
    fixed_pos_embed: bool = False
    """Replace the learned position embedding by I-JEPA's fixed 2-D sin-cos table, frozen."""
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    """Further keyword arguments for ``timm.create_model`` (e.g. ``{class_token: false,
    global_pool: avg, reg_tokens: 4}``)."""

    def __attrs_post_init__(self) -> None:
        timm = _timm()
        if not timm.is_model(self.model):
            hint = did_you_mean(self.model, timm.list_models("vit*"))
            raise ValueError(f"model: timm has no model '{self.model}'{hint}; "
                             "list them with timm.list_models('vit*')")
        reserved = {"pretrained", "num_classes"} & set(self.kwargs)
        if reserved:
            raise ValueError(f"kwargs: {sorted(reserved)} are set by the encoder itself")
        elsewhere = {"checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay"} & set(self.kwargs)
        if elsewhere:  # a recipe inside a checkpoint is data: it must not name files or URLs
            raise ValueError(f"kwargs: {sorted(elsewhere)} would load weights from another file "
                             "or URL; use pretrained: true, or train and export with jepakit")

    def create_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``timm.create_model`` (``pretrained`` aside)."""
        kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": self.in_chans}
        if self.dynamic_img_size:
            kwargs["dynamic_img_size"] = True
        if self.image_size is not None:
            kwargs["img_size"] = self.image_size
        if self.patch_size is not None:
            kwargs["patch_size"] = self.patch_size
        if self.drop_path:
            kwargs["drop_path_rate"] = self.drop_path
        kwargs.update(self.kwargs)
        return kwargs


class TimmEncoder(nn.Module):
    """``encoder(images, keep=None)`` -> patch tokens [B, K or N, D] of a timm ViT.

    The timm model is ``self.model``; its state dict keys carry the ``model.``
    prefix here and lose it in :meth:`timm_export`.
    """

    def __init__(self, config: TimmEncoderConfig) -> None:
        super().__init__()
        timm = _timm()
        from timm.models.vision_transformer import VisionTransformer

        self.config = config
        kwargs = config.create_kwargs()
        try:
            model = timm.create_model(config.model, pretrained=config.pretrained, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"encoder.params: timm cannot build '{config.model}' with "
                              f"{kwargs}: {exc} (the timm encoder wraps timm's "
                              "VisionTransformer family)") from None
        except Exception as exc:  # download failures, bad shapes, ...
            raise JepakitError(f"encoder.params: timm failed to build '{config.model}': "
                               f"{type(exc).__name__}: {exc}") from None
        if not isinstance(model, VisionTransformer):
            raise ConfigError(f"encoder.params.model: '{config.model}' is a timm "
                              f"{type(model).__name__}; the timm encoder wraps timm's "
                              "VisionTransformer family (vit_*, deit_*, ...)")
        self.model = model
        self.embed_dim = int(model.embed_dim)
        self.in_chans = config.in_chans
        img_h, img_w = model.patch_embed.img_size
        grid_h, grid_w = model.patch_embed.grid_size
        self.image_size: tuple[int, int] = (int(img_h), int(img_w))
        self.patch_grid: tuple[int, int] = (int(grid_h), int(grid_w))
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        if config.fixed_pos_embed:
            self._fix_pos_embed()

    def _fix_pos_embed(self) -> None:
        pos = self.model.pos_embed
        if pos is None:
            raise ConfigError(f"encoder.params.fixed_pos_embed: '{self.config.model}' has no "
                              "position embedding to replace")
        table = sincos_pos_embed_2d(self.embed_dim, self.patch_grid)
        extra = pos.shape[1] - table.shape[0]  # prefix positions (class token): zeros, as MAE
        table = torch.cat([table.new_zeros(extra, self.embed_dim), table]) if extra else table
        with torch.no_grad():
            pos.copy_(table.unsqueeze(0).to(pos.dtype))
        pos.requires_grad_(False)

    @property
    def blocks(self) -> nn.Module:
        """The transformer blocks (for plugins that read intermediate layers)."""
        return self.model.blocks

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        m = self.model
        x = m._pos_embed(m.patch_embed(images))  # [B, P + N, D], prefix tokens first
        p = self.num_prefix_tokens
        if keep is not None:
            kept = gather_tokens(x[:, p:], keep)
            x = torch.cat([x[:, :p], kept], dim=1) if p else kept
        x = m.norm_pre(m.patch_drop(x))
        x = m.norm(m.blocks(x))
        return x[:, p:] if p else x

    def forward_intermediates(self, images: torch.Tensor, indices: int = 4, norm: bool = True,
                              ) -> list[torch.Tensor]:
        """timm's own ``forward_intermediates``: the last ``indices`` block outputs as patch
        tokens [B, N, D] (prefix tokens dropped), through the final norm when ``norm``."""
        out = self.model.forward_intermediates(images, indices=indices, norm=norm,
                                               output_fmt="NLC", intermediates_only=True)
        return list(out)

    def timm_export(self) -> dict[str, Any]:
        """The timm architecture, its ``create_model`` arguments and the timm state
        dict: what ``jepakit export --format timm`` writes."""
        state = {k.removeprefix("model."): t for k, t in self.state_dict().items()}
        return {"architecture": self.config.model,
                "model_args": self.config.create_kwargs(),
                "state_dict": state}
