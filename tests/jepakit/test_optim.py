"""AdamW param groups and the official I-JEPA lr / weight-decay schedules."""

from __future__ import annotations

import math

import pytest
import torch
from jepakit_ijepa.vit import VisionTransformer, ViTConfig
from torch import nn

from jepakit.optim import Schedules, build_optimizer, param_groups
from jepakit.recipe import OptimConfig, TrainConfig

OPTIM = OptimConfig(lr=1e-3, start_lr=2e-4, final_lr=1e-6, warmup_steps=10,
                    weight_decay=0.04, final_weight_decay=0.4)


def test_lr_warmup_then_cosine():
    s = Schedules(OPTIM, TrainConfig(steps=110))
    assert s.lr(0) == pytest.approx(2e-4)
    assert s.lr(5) == pytest.approx(6e-4)  # linear warmup
    assert s.lr(10) == pytest.approx(1e-3)  # end of warmup
    assert s.lr(60) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)  # cosine midpoint
    assert s.lr(110) == pytest.approx(1e-6)
    assert s.lr(500) == pytest.approx(1e-6)
    warm = [s.lr(i) for i in range(11)]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    decay = [s.lr(i) for i in range(10, 111)]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    # cosine shape: a quarter of the way down the decay is above the linear interpolation
    assert s.lr(35) > 1e-6 + (1e-3 - 1e-6) * 0.75


def test_lr_with_warmup_epochs():
    optim = OptimConfig(lr=1e-3, start_lr=0.0, final_lr=0.0, warmup_epochs=2)
    train = TrainConfig(epochs=10, samples_per_epoch=1000, batch_size=100)
    s = Schedules(optim, train)
    assert s.total == 100 and s.warmup == 20
    assert s.lr(10) == pytest.approx(5e-4)
    assert s.lr(20) == pytest.approx(1e-3)


def test_lr_without_warmup_starts_at_peak():
    s = Schedules(OptimConfig(lr=1e-3, final_lr=0.0), TrainConfig(steps=50))
    assert s.lr(0) == pytest.approx(1e-3)
    assert s.lr(50) == pytest.approx(0.0, abs=1e-12)


def test_weight_decay_cosine_increase():
    s = Schedules(OPTIM, TrainConfig(steps=100))
    assert s.weight_decay(0) == pytest.approx(0.04)
    assert s.weight_decay(50) == pytest.approx(0.22)
    assert s.weight_decay(100) == pytest.approx(0.4)
    assert s.weight_decay(25) == pytest.approx(0.4 + (0.04 - 0.4) * 0.5 * (1 + math.cos(math.pi / 4)))
    values = [s.weight_decay(i) for i in range(101)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_param_groups_on_vit():
    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig(image_size=16, patch_size=4, embed_dim=32, depth=2,
                                      num_heads=2))
    decay, no_decay = param_groups([vit])
    names = dict((id(p), n) for n, p in vit.named_parameters())
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert decay["apply_wd"] is True and no_decay["apply_wd"] is False
    assert no_decay["weight_decay"] == 0.0
    assert decay_names | no_decay_names == set(names.values())
    assert not decay_names & no_decay_names
    assert "patch_embed.proj.weight" in decay_names  # 4-D conv weight
    assert "blocks.0.attn.qkv.weight" in decay_names
    assert "blocks.0.attn.qkv.bias" in no_decay_names
    assert "norm.weight" in no_decay_names and "norm.bias" in no_decay_names
    assert all(n.endswith(".bias") or vit.get_parameter(n).ndim <= 1 for n in no_decay_names)
    assert all(vit.get_parameter(n).ndim >= 2 for n in decay_names)


def test_param_groups_skip_frozen_and_take_several_modules():
    a, b = nn.Linear(3, 4), nn.Linear(4, 2, bias=False)
    a.weight.requires_grad_(False)
    decay, no_decay = param_groups([a, b])
    assert [p is b.weight for p in decay["params"]] == [True]
    assert [p is a.bias for p in no_decay["params"]] == [True]


def test_schedules_apply_to_optimizer():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    opt = build_optimizer([model], OPTIM)
    s = Schedules(OPTIM, TrainConfig(steps=100))
    lr, wd = s.apply(opt, 50)
    assert lr == pytest.approx(s.lr(50)) and wd == pytest.approx(s.weight_decay(50))
    decay_group, no_decay_group = opt.param_groups
    assert decay_group["lr"] == no_decay_group["lr"] == lr
    assert decay_group["weight_decay"] == pytest.approx(wd)
    assert no_decay_group["weight_decay"] == 0.0
    assert decay_group["betas"] == OPTIM.betas
