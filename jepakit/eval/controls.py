"""The controls every probe result needs: the same probe on the same architecture with
its random initial weights, and on raw pixels (``--controls``). A probe accuracy alone
says little; the margin over these two says what training added (on Fashion-MNIST a
random ViT already scores 0.77 and raw pixels 0.84, see docs/results.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jepakit import checkpoint as ckpt
from jepakit.eval import features as F


def random_init_of(source: F.FeatureSource, registry: Any = None) -> F.FeatureSource | None:
    """The architecture of a checkpoint's encoder with the weights training started from
    (the recipe's seed); None when ``source`` has no checkpoint (already random or pixels)."""
    if source.checkpoint is None or source.encoder is None:
        return None
    state = ckpt.load(source.checkpoint)
    recipe = F._recipe_of(state, source.checkpoint, registry)
    encoder = F.encoder_from_recipe(recipe, registry)
    digest = hashlib.sha1(json.dumps(F._plain(recipe), sort_keys=True).encode()).hexdigest()[:12]
    return F.source_for(recipe, encoder, f"{recipe.name} random init", f"random:{digest}")


def pixels_of(source: F.FeatureSource) -> F.FeatureSource:
    """Raw pixels at the encoder's input size, channels and normalisation."""
    return F.pixels(source.image_size, source.in_chans, source.mean, source.std, source.clips)


def control_sources(source: F.FeatureSource, registry: Any = None) -> list[F.FeatureSource]:
    """Random init (when ``source`` is a trained encoder) and raw pixels (unless ``source``
    is pixels)."""
    if source.encoder is None:
        return []
    random = random_init_of(source, registry)
    return ([random] if random is not None else []) + [pixels_of(source)]
