"""I-JEPA's narrow ViT predictor (Assran et al., 2023, section 3).

Context tokens are projected to the predictor width and given their position
embeddings; each target block is represented by learnable mask tokens plus the
target positions. As in the paper, every target block is predicted from the
context on its own (the blocks do not attend to each other): the context is
repeated once per target along the batch, and all targets go through one pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from attrs import validators as v
from torch import nn

from jepakit.ops import sincos_pos_embed_2d

from .vit import Block, init_transformer


@attrs.define
class PredictorConfig:
    """Paper: width 384, depth 12 for ViT-H (6 for ViT-B, 16 for ViT-G), heads as the encoder."""

    embed_dim: int = attrs.field(default=384, validator=v.gt(0))
    depth: int = attrs.field(default=12, validator=v.gt(0))
    num_heads: int = attrs.field(default=12, validator=v.gt(0))
    mlp_ratio: float = attrs.field(default=4.0, validator=v.gt(0))
    drop_path: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(1)])

    def __attrs_post_init__(self) -> None:
        if self.embed_dim % self.num_heads or self.embed_dim % 4:
            raise ValueError(
                f"embed_dim {self.embed_dim} must divide by num_heads {self.num_heads} and by 4"
            )


class Predictor(nn.Module):
    def __init__(self, config: PredictorConfig, *, embed_dim: int, patch_grid: tuple[int, int]) -> None:
        super().__init__()
        dim = config.embed_dim
        self.config = config
        self.patch_grid = tuple(patch_grid)
        self.embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_pos_embed_2d(dim, self.patch_grid), persistent=False)
        rates = [config.drop_path * i / max(config.depth - 1, 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(Block(dim, config.num_heads, config.mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, embed_dim)
        init_transformer(self, self.blocks)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(
        self,
        context_tokens: torch.Tensor,
        context_idx: torch.Tensor,
        target_idx: Sequence[torch.Tensor],
    ) -> list[torch.Tensor]:
        lengths = {t.shape[1] for t in target_idx}
        if len(lengths) > 1:  # unequal target sizes: predict each block separately
            return [self._predict(context_tokens, context_idx, [t])[0] for t in target_idx]
        return self._predict(context_tokens, context_idx, target_idx)

    def _predict(
        self, context_tokens: torch.Tensor, context_idx: torch.Tensor, target_idx: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        m = len(target_idx)
        b, kc, _ = context_tokens.shape
        pos = self.pos_embed.to(context_tokens.dtype)
        ctx = self.embed(context_tokens) + pos[context_idx]
        tgt_idx = torch.cat(list(target_idx), dim=0)  # [M*B, Kt], target-major
        queries = self.mask_token.to(ctx.dtype) + pos[tgt_idx]
        x = torch.cat([ctx.repeat(m, 1, 1), queries], dim=1)
        for block in self.blocks:
            x = block(x)
        out = self.proj(self.norm(x[:, kc:]))
        return list(out.split(b, dim=0))
