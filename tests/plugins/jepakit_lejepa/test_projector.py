"""LeJEPA's MLP projector: layout, shapes, defaults, errors."""

from __future__ import annotations

import pytest
import torch
from jepakit_lejepa.projector import MLPProjector, ProjectorConfig
from torch import nn

from jepakit.config import structure
from jepakit.errors import ConfigError


def test_three_linears_with_batchnorm_and_gelu_between():
    projector = MLPProjector(ProjectorConfig(), embed_dim=384)
    kinds = [type(m) for m in projector.net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.GELU] * 2 + [nn.Linear]
    linears = [m for m in projector.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(384, 2048), (2048, 2048),
                                                                  (2048, 128)]
    assert projector.out_dim == 128


def test_forward_shapes_in_train_and_eval():
    projector = MLPProjector(ProjectorConfig(hidden_dim=16, out_dim=4), embed_dim=8)
    assert projector(torch.randn(5, 8)).shape == (5, 4)
    projector.eval()
    assert projector(torch.randn(1, 8)).shape == (1, 4)


def test_wrong_input_width_and_bad_config_are_clear_errors():
    projector = MLPProjector(ProjectorConfig(hidden_dim=16, out_dim=4), embed_dim=8)
    with pytest.raises(ValueError, match=r"expects \[B, 8\]"):
        projector(torch.randn(5, 7))
    with pytest.raises(ConfigError, match="projector.params.out_dim"):
        structure(ProjectorConfig, {"out_dim": 0}, "projector.params")
