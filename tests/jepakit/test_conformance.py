"""The conformance kit over every registered component of every kind (maskers have
their own suite, tests/plugins/jepakit_masks/test_masks_conformance.py), as timm's
tests run over every registered model. Third-party components go through the same
checks in tests/examples/."""

from __future__ import annotations

import attrs
import pytest
import torch
from torch import nn

import jepakit
from jepakit.conformance import CHECKS, ComponentError, check_component
from jepakit.registry import Registry

REGISTRY = Registry()
CASES = [(kind, name) for kind in CHECKS for name in sorted(REGISTRY.components(kind))]


def test_every_kind_with_a_check_has_registered_components():
    assert {kind for kind, _ in CASES} == set(CHECKS)


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_registered_component_conforms(kind, name):
    check_component(REGISTRY, kind, name)


@attrs.define
class _Empty:
    pass


class _Frozen(nn.Module):
    """An 'encoder' one of whose parameters never gets a gradient: the kit must say so."""

    def __init__(self, config):
        super().__init__()
        self.embed_dim, self.patch_grid, self.image_size, self.in_chans = 8, (2, 2), (4, 4), 1
        self.proj = nn.Linear(4, 8)
        self.unused = nn.Parameter(torch.zeros(3))

    def forward(self, images, keep=None):
        x = self.proj(images.reshape(images.shape[0], 4, 4))
        return x if keep is None else torch.gather(x, 1, keep[..., None].expand(-1, -1, 8))


class _NoGradLoss:
    inputs = ("predictions", "targets")

    def __init__(self, config):
        pass

    def __call__(self, predictions, targets):
        return torch.tensor(1.0)  # detached: no gradient reaches the predictions


class _Broken:
    @jepakit.hookimpl
    def jepakit_encoders(self):
        return [jepakit.Component("frozen_part", _Frozen, _Empty)]

    @jepakit.hookimpl
    def jepakit_losses(self):
        return [jepakit.Component("no_grad", _NoGradLoss, _Empty)]


def test_the_kit_catches_a_parameter_without_gradient_and_a_detached_loss():
    registry = Registry(plugins=[_Broken()])
    with pytest.raises(ComponentError, match="'unused' got no gradient"):
        check_component(registry, "encoder", "frozen_part")
    with pytest.raises(ComponentError, match="no gradient reaches its inputs"):
        check_component(registry, "loss", "no_grad")


class _GridPredictor(nn.Module):
    """A position table over the whole grid (any rank), gathered at the target indices."""

    grid_ranks = (2, 3)

    def __init__(self, config, *, embed_dim, patch_grid):
        super().__init__()
        self.patch_grid = tuple(patch_grid)
        self.pos = nn.Parameter(torch.randn(int(torch.tensor(patch_grid).prod()), embed_dim))
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, tokens, context_idx, target_idx):
        pooled = self.proj(tokens.mean(dim=1, keepdim=True))
        return [pooled + self.pos[t] for t in target_idx]


class _ImageOnlyGrid(_GridPredictor):
    """Declares video grids but predicts only the first target on them."""

    def forward(self, tokens, context_idx, target_idx):
        out = super().forward(tokens, context_idx, target_idx)
        return out[:1] if len(self.patch_grid) == 3 else out


class _Grids:
    @jepakit.hookimpl
    def jepakit_predictors(self):
        return [jepakit.Component("any_grid", _GridPredictor, _Empty),
                jepakit.Component("image_only_grid", _ImageOnlyGrid, _Empty)]


def test_predictors_declaring_video_grids_are_checked_on_one():
    registry = Registry(plugins=[_Grids()])
    check_component(registry, "predictor", "any_grid")
    with pytest.raises(ComponentError, match="gave 1 predictions for 2 targets on a 2x4x4 grid"):
        check_component(registry, "predictor", "image_only_grid")
