"""The attentive probe: a cross-attention pooler with learnable query tokens over the
frozen encoder's patch tokens, then a linear head (the protocol of V-JEPA, Bardes et al.,
2024, arXiv 2404.08471, and V-JEPA 2: query tokens attend over the tokens, a few
attention blocks, 16 heads, trained with AdamW on frozen features).

Average pooling throws away *where* information is; the pooler learns which tokens to
read. Several learning-rate x weight-decay settings are trained at once, in one pass
over the data: every parameter carries a leading "setting" dimension, so one batch of
tokens feeds all the heads (the tokens are read and normalised once). The setting with
the best accuracy on a held-out part of the training set is the one reported.

Block 1 is cross-attention (queries attend over the tokens); blocks 2..depth are
self-attention among the queries; each block is followed by an MLP (ratio 4), pre-norm
residual as in a ViT. The head reads the mean of the query tokens through a LayerNorm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from jepakit.errors import JepakitError
from jepakit.eval.probe import split_indices

LEARNING_RATES: tuple[float, ...] = (1e-3, 3e-4, 1e-4)
WEIGHT_DECAYS: tuple[float, ...] = (0.01, 0.1)
MAX_HEADS = 16


def attention_heads(width: int, wanted: int = MAX_HEADS) -> int:
    """``wanted`` heads (16, V-JEPA's), fewer for narrow tokens: the largest divisor of
    ``width`` no larger than ``wanted`` that leaves each head at least 8 dimensions."""
    return max([h for h in range(1, wanted + 1) if width % h == 0 and width // h >= min(8, width)]
               or [1])


class BatchedPooler(nn.Module):
    """``settings`` independent attentive classifiers, evaluated together:
    ``forward(tokens [B, N, D]) -> logits [settings, B, classes]``."""

    def __init__(self, settings: int, width: int, classes: int, queries: int = 1,
                 depth: int = 1, heads: int = MAX_HEADS, mlp_ratio: float = 4.0,
                 seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.settings, self.width, self.heads = settings, width, attention_heads(width, heads)
        hidden = int(width * mlp_ratio)

        def weight(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(settings, *shape, generator=g).clamp(-2, 2) * 0.02)

        def zeros(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.zeros(settings, *shape))

        def ones(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.ones(settings, *shape))

        self.query = weight(queries, width)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            b = nn.ParameterDict({
                "n1_w": ones(width), "n1_b": zeros(width), "wq": weight(width, width),
                "bq": zeros(width), "wk": weight(width, width), "bk": zeros(width),
                "wv": weight(width, width), "bv": zeros(width), "wo": weight(width, width),
                "bo": zeros(width), "n2_w": ones(width), "n2_b": zeros(width),
                "w1": weight(width, hidden), "b1": zeros(hidden), "w2": weight(hidden, width),
                "b2": zeros(width)})
            self.blocks.append(b)
        self.norm_w, self.norm_b = ones(width), zeros(width)
        self.head_w, self.head_b = weight(width, classes), zeros(classes)

    def decayed(self) -> Iterator[nn.Parameter]:
        """The matrices (weight decay applies to them, not to norms, biases, queries)."""
        for name, p in self.named_parameters():
            if name.rsplit(".", 1)[-1] in ("wq", "wk", "wv", "wo", "w1", "w2", "head_w"):
                yield p

    @staticmethod
    def _affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shape = (w.shape[0],) + (1,) * (x.dim() - 2) + (w.shape[-1],)
        return x * w.view(shape) + b.view(shape)

    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.einsum("sbtd,sde->sbte", x, w) + b[:, None, None, :]

    def _attend(self, blk: nn.ParameterDict, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        s, b, nq, d = q.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(s * b, t.shape[2], h, d // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self._linear(q, blk["wq"], blk["bq"])),
                                             split(self._linear(kv, blk["wk"], blk["bk"])),
                                             split(self._linear(kv, blk["wv"], blk["bv"])))
        out = out.transpose(1, 2).reshape(s, b, nq, d)
        return self._linear(out, blk["wo"], blk["bo"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(tokens.float(), (self.width,))[None]  # shared by the settings
        q = self.query[:, None].expand(-1, len(tokens), -1, -1)
        for i, module in enumerate(self.blocks):
            blk: nn.ParameterDict = module  # type: ignore[assignment]
            qn = self._affine(F.layer_norm(q, (self.width,)), blk["n1_w"], blk["n1_b"])
            kv = self._affine(x, blk["n1_w"], blk["n1_b"]) if i == 0 else qn
            q = q + self._attend(blk, qn, kv)
            hid = self._affine(F.layer_norm(q, (self.width,)), blk["n2_w"], blk["n2_b"])
            q = q + self._linear(F.gelu(self._linear(hid, blk["w1"], blk["b1"])),
                                 blk["w2"], blk["b2"])
        pooled = self._affine(F.layer_norm(q.mean(2), (self.width,)), self.norm_w, self.norm_b)
        return torch.einsum("sbd,sdc->sbc", pooled, self.head_w) + self.head_b[:, None, :]


class BatchedAdamW:
    """AdamW (Loshchilov and Hutter, 2019) with one learning rate and weight decay per
    setting (the leading dimension of every parameter)."""

    def __init__(self, model: BatchedPooler, lrs: torch.Tensor, wds: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = list(model.parameters())
        decayed = {id(p) for p in model.decayed()}
        self.wd = [wds if id(p) in decayed else torch.zeros_like(wds) for p in self.params]
        self.lrs, self.betas, self.eps, self.t = lrs, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, scale: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v, wd in zip(self.params, self.m, self.v, self.wd):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            lr = (self.lrs * scale).view(shape)
            p.mul_(1 - lr * wd.view(shape))
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.sub_(lr * (m / (1 - b1 ** self.t)) / denom)
            p.grad = None


def _schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


@torch.no_grad()
def predict(model: BatchedPooler, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels [settings, N]."""
    out = [model(x[i:i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]
    return torch.cat(out, 1) if out else torch.empty(model.settings, 0, dtype=torch.long)


def attentive_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                    test_y: torch.Tensor, learning_rates: Sequence[float] = LEARNING_RATES,
                    weight_decays: Sequence[float] = WEIGHT_DECAYS, epochs: int = 10,
                    batch_size: int = 256, queries: int = 1, depth: int = 1,
                    heads: int = MAX_HEADS, val_fraction: float = 0.1, seed: int = 0,
                    progress: bool = False) -> dict[str, Any]:
    """Train one pooler per (learning rate, weight decay) on ``train_x`` [n, tokens, D]
    less a held-out ``val_fraction``, pick the best on the held-out part, report its
    test accuracy. Without enough examples to hold any out, every setting is scored on
    the training set (reported as such)."""
    classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    grid = [(lr, wd) for lr in learning_rates for wd in weight_decays]
    fit_idx, val_idx = split_indices(train_y, val_fraction, seed)
    if len(val_idx) < classes:
        fit_idx, val_idx = torch.arange(len(train_y)), torch.arange(len(train_y))
    torch.manual_seed(seed)
    model = BatchedPooler(len(grid), int(train_x.shape[-1]), classes, queries, depth, heads,
                          seed=seed)
    opt = BatchedAdamW(model, torch.tensor([g[0] for g in grid]),
                       torch.tensor([g[1] for g in grid]))
    steps_per_epoch = -(-len(fit_idx) // batch_size)
    total = epochs * steps_per_epoch
    g = torch.Generator().manual_seed(seed)
    start, step = time.perf_counter(), 0
    with tqdm(total=total, desc="attentive", disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            order = fit_idx[torch.randperm(len(fit_idx), generator=g)]
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size].sort().values  # sorted: sequential reads
                logits = model(train_x[idx])
                loss = F.cross_entropy(logits.flatten(0, 1), train_y[idx].repeat(len(grid)),
                                       reduction="mean") * len(grid)  # each setting's mean
                loss.backward()
                opt.step(_schedule(step, total, max(1, total // 10)))
                step += 1
                bar.update(1)
    model.eval()
    val_hits = (predict(model, train_x[val_idx]) == train_y[val_idx]).float().mean(1)
    best = int(val_hits.argmax())
    test_pred = predict(model, test_x)[best]
    return {
        "accuracy": float((test_pred == test_y).float().mean()),
        "learning_rate": grid[best][0],
        "weight_decay": grid[best][1],
        "val_accuracy_by_setting": {f"lr {lr:g}, wd {wd:g}": float(a)
                                    for (lr, wd), a in zip(grid, val_hits)},
        "validation": "held out" if len(val_idx) < len(train_y) else "train (too few to hold out)",
        "epochs": epochs, "batch_size": batch_size, "queries": queries, "depth": depth,
        "heads": model.heads, "train_s": time.perf_counter() - start,
    }


# -- tokens of a feature source ------------------------------------------------------------
def pixel_patch(source: Any) -> int:
    """Patch size for pixel tokens: the encoder's (``image_size / patch_grid``) when there
    is one, else the largest divisor of the image size up to 16."""
    if source.encoder is not None and hasattr(source.encoder, "patch_grid"):
        return int(source.image_size) // int(source.encoder.patch_grid[-2])  # rows, on any grid
    return max(p for p in range(1, 17) if source.image_size % p == 0)


def patch_tokens(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/p)(W/p), C p p] raster-order pixel patches; clips
    [B, C, T, H, W] -> [B, T (H/p)(W/p), C p p], each frame's patches in turn."""
    if images.dim() == 6:  # K clips of each video: their tokens side by side
        n, k = images.shape[:2]
        tokens = patch_tokens(images.flatten(0, 1), patch)
        return tokens.reshape(n, k * tokens.shape[1], tokens.shape[2])
    if images.dim() == 5:
        n, chans, frames = images.shape[:3]
        stills = images.transpose(1, 2).reshape(n * frames, chans, *images.shape[3:])
        tokens = patch_tokens(stills, patch)
        return tokens.reshape(n, frames * tokens.shape[1], tokens.shape[2])
    b, c, h, w = images.shape
    t = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return t.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def extract_tokens(source: Any, data: Any, patch: int | None = None, **kw: Any) -> Any:
    """The frozen encoder's output tokens [N, tokens, D] of every image of ``data``
    (``encoder(images)``, the encoder contract), or pixel patches for a pixel source;
    streamed to the fp16 cache like pooled features (``kw``: as
    :func:`jepakit.eval.features.extract_with`)."""
    from jepakit.eval.features import cache_key, extract_with

    device = kw.pop("device", "cpu")
    encoder = source.encoder.to(device) if source.encoder is not None else None
    p = patch or pixel_patch(source)
    if source.image_size % p:
        raise JepakitError(f"pixel patch {p} does not divide the image size {source.image_size}")

    def fn(images: torch.Tensor) -> torch.Tensor:
        if encoder is None:
            return patch_tokens(images, p)
        if images.dim() == 6:  # K clips of each video: their tokens side by side
            n, k = images.shape[:2]
            tokens = encoder(images.flatten(0, 1).to(device)).float()
            return tokens.reshape(n, k * tokens.shape[1], tokens.shape[2])
        return encoder(images.to(device)).float()

    layers = "tokens" if encoder is not None else f"pixel-tokens-{p}"
    key = cache_key(source, data, layers, kw.get("crop_ratio", 1.0), kw.get("limit"))
    return extract_with(source, data, f"{kw.pop('desc', 'features')}-{layers}-{key}", fn, **kw)
