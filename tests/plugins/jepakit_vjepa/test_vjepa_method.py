"""The ``vjepa`` method on random clips with a tiny in-test masker (the real 3-D
multi-block masker is ``vjepa_multiblock``): context c pairs with target c, each
configuration uses its own mask token, the step outputs feed the monitors, the kit passes,
and a few optimizer steps lower the loss."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from vjepa_helpers import registry

from jepakit.conformance import check_component
from jepakit.contracts import Masks
from jepakit.data.loader import Batch
from jepakit.method import build_method
from jepakit.recipe import load_recipe
from jepakit.registry import Registry

torch.set_num_threads(1)


def recipe(reg: Registry, **method_params):
    data = {
        "method": {"name": "vjepa", "params": method_params},
        "encoder": {"name": "vit_video", "params": {
            "size": "tiny", "image_size": 32, "patch_size": 8, "num_frames": 4, "embed_dim": 32,
            "depth": 2, "num_heads": 2}},
        "masker": {"name": "tiny_zip"},
        "predictor": {"name": "vjepa", "params": {"embed_dim": 16, "depth": 2, "num_heads": 2}},
        "target_updater": {"name": "ema", "params": {"start": 0.99}},
        "loss": {"name": "l1"},
        "data": {"name": "synthetic"},
        "train": {"steps": 10, "batch_size": 4},
    }
    return load_recipe(data, (), reg)


def batch(masker, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    clips = torch.randn(4, 3, 4, 32, 32, generator=g)
    return Batch(images=clips, labels=None, masks=masker(4, (2, 4, 4), g))


def test_each_context_predicts_its_own_target_with_its_own_mask_token():
    reg = registry()
    torch.manual_seed(0)
    method, masker = build_method(recipe(reg), reg)
    b = batch(masker)
    result = method(b, 0)
    outputs = result.outputs
    assert [tuple(p.shape) for p in outputs.predictions] == [(4, 3, 32), (4, 12, 32)]
    assert [tuple(t.shape) for t in outputs.targets] == [(4, 3, 32), (4, 12, 32)]
    assert outputs.target_features.shape == (4, 32, 32)
    # the targets are the layer-normed target features at each configuration's target
    normed = torch.nn.functional.layer_norm(outputs.target_features, (32,))
    for t, idx in zip(outputs.targets, b.masks.targets, strict=True):
        torch.testing.assert_close(t, torch.stack([normed[i, idx[i]] for i in range(4)]))
    result.loss.backward()
    assert all(bool(tok.grad.abs().sum() > 0) for tok in method.predictor.mask_tokens)


def test_shared_mask_tokens_use_token_zero_only():
    reg = registry()
    method, masker = build_method(recipe(reg, mask_tokens="shared"), reg)
    method(batch(masker), 0).loss.backward()
    assert method.predictor.mask_tokens[0].grad.abs().sum() > 0
    assert bool((method.predictor.mask_tokens[1].grad == 0).all())  # in the graph, at zero


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_trains_with_mask_tokens_a_step_does_not_use():
    """The engine's DDP has no find_unused_parameters: an idle mask token must still be
    in the graph, or the second step fails."""
    reg = registry()
    method, masker = build_method(recipe(reg, mask_tokens="shared"), reg)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        ddp = DDP(method)
        for step in range(2):
            ddp(batch(masker, seed=step), step).loss.backward()
    finally:
        dist.destroy_process_group()


def test_a_masker_with_unpaired_counts_is_an_error():
    from jepakit_vjepa.method import pairs

    from jepakit.errors import JepakitError

    two = [torch.zeros(1, 2, dtype=torch.long)] * 2
    assert pairs(Masks(context=two[:1], targets=two)) == [(0, 0), (0, 1)]
    with pytest.raises(JepakitError, match="2 context masks and 3 target masks"):
        pairs(Masks(context=two, targets=[*two, two[0]]))


def test_the_method_passes_the_conformance_kit():
    check_component(registry(), "method", "vjepa")


def test_a_few_steps_lower_the_loss():
    reg = registry()
    torch.manual_seed(0)
    method, masker = build_method(recipe(reg), reg)
    params = [p for m in method.trainable() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    fixed = batch(masker, seed=1)
    losses = []
    for step in range(15):
        loss = method(fixed, step).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_optimizer_step(step)
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.95 * losses[0], losses
