"""The V-JEPA predictor (Bardes et al. 2024, section 3; V-JEPA 2, Assran et al. 2025):
a narrow, deep ViT (12 blocks of width 384 by default) over the context tokens plus one
learnable mask token at every target position.

There is one mask token per mask configuration (``num_mask_tokens``); the method picks
it with ``mask_index`` (the configuration's index). Positions follow the encoder's scheme:
the predictor-width 3-D sin-cos table added to context tokens and mask tokens, or 3-D RoPE
in every block on the tokens' grid positions. Several target blocks passed at once are
each predicted from the context on their own, as in I-JEPA.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from attrs import validators as v
from torch import nn

from jepakit.errors import JepakitError

from .layers import Block, Rope, init_weights, run_blocks
from .positions import as_grid3
from .vit import Positions, check_positions, register_positions


@attrs.define
class VJEPAPredictorConfig:
    """Official V-JEPA 2 predictor: width 384, depth 12, 12 heads, mask tokens zero-initialised."""

    embed_dim: int = attrs.field(default=384, validator=v.gt(0))
    depth: int = attrs.field(default=12, validator=v.gt(0))
    num_heads: int = attrs.field(default=12, validator=v.gt(0))
    mlp_ratio: float = attrs.field(default=4.0, validator=v.gt(0))
    num_mask_tokens: int = attrs.field(default=2, validator=v.gt(0))
    """One learnable mask token per mask configuration (V-JEPA 2's default masks: 2)."""
    positions: Positions = attrs.field(default="rope", validator=v.in_(("sincos", "rope")))
    """As the encoder's: ``sincos`` (V-JEPA) or ``rope`` (V-JEPA 2)."""
    uniform_power: bool = False
    zero_init_mask_tokens: bool = True
    """Start the mask tokens at zero (the official default) instead of trunc-normal(0.02)."""
    drop_path: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(1)])
    activation_checkpointing: bool = False

    def __attrs_post_init__(self) -> None:
        check_positions(self.embed_dim, self.num_heads, self.positions, "embed_dim")


class VJEPAPredictor(nn.Module):
    grid_ranks = (2, 3)
    """Image (rows, columns) and video (frames, rows, columns) grids; the conformance kit
    checks both."""

    def __init__(self, config: VJEPAPredictorConfig, *, embed_dim: int,
                 patch_grid: tuple[int, ...]) -> None:
        super().__init__()
        dim = config.embed_dim
        self.config = config
        self.patch_grid = as_grid3(tuple(patch_grid))
        self.embed = nn.Linear(embed_dim, dim)
        register_positions(self, config.positions, dim, config.num_heads, self.patch_grid,
                           config.uniform_power)
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, dim)) for _ in range(config.num_mask_tokens))
        rates = [config.drop_path * i / max(config.depth - 1, 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(Block(dim, config.num_heads, config.mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, embed_dim)
        init_weights(self, self.blocks)
        if not config.zero_init_mask_tokens:
            for token in self.mask_tokens:
                nn.init.trunc_normal_(token, std=0.02)

    def forward(self, context_tokens: torch.Tensor, context_idx: torch.Tensor,
                target_idx: Sequence[torch.Tensor], *, mask_index: int = 0) -> list[torch.Tensor]:
        """One [B, Kt_j, D] prediction per target block, all with mask token ``mask_index``."""
        if not 0 <= mask_index < len(self.mask_tokens):
            raise JepakitError(f"mask configuration {mask_index} has no mask token: the predictor "
                               f"has num_mask_tokens={len(self.mask_tokens)} (predictor.params."
                               "num_mask_tokens must be at least the masker's configurations)")
        if len({t.shape[1] for t in target_idx}) > 1:  # unequal sizes: one pass per block
            return [self._predict(context_tokens, context_idx, [t], mask_index)[0]
                    for t in target_idx]
        return self._predict(context_tokens, context_idx, target_idx, mask_index)

    def _predict(self, context_tokens: torch.Tensor, context_idx: torch.Tensor,
                 target_idx: Sequence[torch.Tensor], mask_index: int) -> list[torch.Tensor]:
        m = len(target_idx)
        b, kc, _ = context_tokens.shape
        ctx = self.embed(context_tokens)
        tgt_idx = torch.cat(list(target_idx), dim=0)  # [M*B, Kt], target-major
        queries = self.mask_tokens[mask_index].to(ctx.dtype).expand(tgt_idx.shape[0], tgt_idx.shape[1], -1)
        rope: Rope = None
        if self.config.positions == "sincos":
            table = self.pos_embed.to(ctx.dtype)
            ctx, queries = ctx + table[context_idx], queries + table[tgt_idx]
        else:
            idx = torch.cat([context_idx.repeat(m, 1), tgt_idx], dim=1)
            rope = (self.rope_cos[idx], self.rope_sin[idx])
        x = torch.cat([ctx.repeat(m, 1, 1), queries], dim=1)
        recompute = self.config.activation_checkpointing and self.training
        x = run_blocks(self.blocks, x, rope, recompute)
        out = self.proj(self.norm(x[:, kc:]))
        return list(out.split(b, dim=0))
