"""Collapse monitors: label-free signs that a JEPA's representations are degenerating.

A JEPA can lower its loss by making every representation the same (complete
collapse) or by using only a few directions (dimensional collapse); the EMA
target and the predictor make this rare in I-JEPA but not impossible with a bad
learning rate, momentum or mask setting. Read from the method's own outputs of the
logged step (``StepOutputs``: nothing is run again), on a few images of the batch,
every ``monitors.every_steps`` steps; a method that has no predictions or
target features (LeJEPA) gets the monitors its outputs allow:

* ``rankme``: effective rank of the target encoder's patch features, or of the
  view embeddings when there is no target network (RankMe, Garrido et al., 2023,
  arXiv 2210.02885), at most the width D. Falls towards 1 when the features collapse.
* ``target_std`` / ``pred_std``: per-dimension standard deviation of the
  L2-normalised targets (as regressed: after the loss's target transform) and
  predictions, averaged over dimensions and scaled by sqrt(D), so isotropic
  features give about 1 and identical ones 0 (SimSiam's collapse check, Chen & He,
  2021, arXiv 2011.10566).
* ``pred_target_cos``: mean cosine between predictions and their targets. Near 1
  together with a small ``target_std`` means the task became trivial.
* ``content_share``: the share of the (L2-normalised) target features' variance that
  comes from the image rather than the patch position: variance across images at a
  fixed position over the total variance. Near 0, the features encode where a patch
  is, not what it shows: a predictor that is given the target positions then predicts
  them almost perfectly (a near-zero loss) without the encoder learning anything.
  jepakit found this "positional shortcut" with ViTs whose patches hold few pixels
  (4x4 grayscale): see docs/monitoring.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from jepakit.contracts import Masks, StepOutputs
from jepakit.eval.rank import rankme

MAX_IMAGES = 32
"""Images of the batch the monitors look at."""
MAX_ROWS = 4096
"""Patch features fed to the SVD."""

RANK_FRACTION = 0.05
"""Warn below this fraction of the width (and below 2): the features span almost nothing."""
MAX_COS = 0.97
"""Warn above this prediction-target cosine: the prediction task has become trivial."""
MIN_STD = 0.05
"""Warn when the normalised spread of targets or predictions falls below this."""
MIN_CONTENT = 0.1
"""Warn when less than this share of the target variance depends on the image."""


def normalised_std(x: torch.Tensor) -> float:
    """Mean per-dimension std of the L2-normalised rows of ``x`` [M, D], times sqrt(D)."""
    z = F.normalize(x.float().reshape(-1, x.shape[-1]), dim=-1)
    if len(z) < 2:
        return float("nan")
    return float(z.std(0).mean() * math.sqrt(z.shape[-1]))


def content_share(features: torch.Tensor) -> float:
    """Across-image variance at a fixed position over total variance, of the
    L2-normalised features [B, N, D]; 0 when the features depend on position only."""
    if features.shape[0] < 2:
        return float("nan")
    z = F.normalize(features.float(), dim=-1)
    total = z.reshape(-1, z.shape[-1]).var(0).sum()
    if not bool(total > 0):
        return 0.0
    return float(z.var(0).sum(-1).mean() / total)


def subset(masks: Masks, n: int) -> Masks:
    return Masks(context=[m[:n] for m in masks.context], targets=[m[:n] for m in masks.targets])


@torch.no_grad()
def collapse_metrics(outputs: StepOutputs, max_images: int = MAX_IMAGES) -> dict[str, float]:
    """The monitors for (the first ``max_images`` images of) one step's outputs."""
    found: dict[str, float] = {}
    raw = outputs.target_features
    if raw is not None:
        raw = raw[:max_images]
        found["rankme"] = _rankme_rows(raw.reshape(-1, raw.shape[-1]))
    elif outputs.embeddings:
        found["rankme"] = _rankme_rows(torch.cat([e[:max_images] for e in outputs.embeddings]))
    if outputs.predictions and outputs.targets:
        pred = torch.cat([p[:max_images].float().reshape(-1, p.shape[-1])
                          for p in outputs.predictions])
        tgt = torch.cat([t[:max_images].float().reshape(-1, t.shape[-1])
                         for t in outputs.targets])
        found.update(target_std=normalised_std(tgt), pred_std=normalised_std(pred),
                     pred_target_cos=float(F.cosine_similarity(pred, tgt, dim=-1).mean()))
    if raw is not None:
        found["content_share"] = content_share(raw)
    return found


def _rankme_rows(feats: torch.Tensor) -> float:
    feats = feats.detach().float()
    if len(feats) > MAX_ROWS:
        g = torch.Generator(device="cpu").manual_seed(0)
        feats = feats[torch.randperm(len(feats), generator=g)[:MAX_ROWS].to(feats.device)]
    return rankme(feats.cpu())


def collapse_signs(m: dict[str, float], width: int) -> list[str]:
    """Human-readable reasons the monitors point at collapse (empty when healthy)."""
    signs = []
    floor = max(2.0, RANK_FRACTION * width)
    if m.get("rankme", math.inf) < floor:
        signs.append(f"effective rank {m['rankme']:.1f} of {width} (RankMe < {floor:.1f})")
    for key, what in (("target_std", "targets"), ("pred_std", "predictions")):
        value = m.get(key, math.inf)
        if value < MIN_STD:
            signs.append(f"{what} barely vary ({key} {value:.3f} < {MIN_STD})")
    if m.get("pred_target_cos", -1.0) > MAX_COS:
        signs.append(f"predictions match their targets almost exactly (pred_target_cos "
                     f"{m['pred_target_cos']:.3f} > {MAX_COS}): the task has become trivial")
    if m.get("content_share", math.inf) < MIN_CONTENT:
        signs.append(f"target features depend on the patch position, hardly on the image "
                     f"(content_share {m['content_share']:.3f} < {MIN_CONTENT})")
    return signs
