"""`jepakit convert ijepa-official`: a checkpoint in the official I-JEPA layout
converts, and jepakit's modules then compute what the official model computes.

No official checkpoint can be downloaded here, so the test writes one itself: the
official layout (``encoder``/``predictor``/``target_encoder`` state dicts with DDP's
``module.`` prefix, the stored sin-cos tables, ``opt``, ``epoch``, ...) with random
weights. ``reference_*`` below is a small, independent re-statement of the official
forward (manual softmax attention, conv patches, sin-cos table from numpy, the
predictor's mask tokens), written from the paper and the released architecture.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from jepakit_ijepa.official import convert_ijepa_official

from jepakit import checkpoint
from jepakit.cli import main
from jepakit.errors import JepakitError
from jepakit.interop import encoder_from_state

torch.set_num_threads(1)

WIDTH, DEPTH, HEADS, PATCH, IMAGE = 192, 2, 3, 4, 16  # ViT-Ti width: 3 heads, inferred
PRED_WIDTH, PRED_DEPTH = 96, 2
SIDE = IMAGE // PATCH
TOLERANCE = 1e-5


# -- an independent reference of the official forward --------------------------------------

def reference_sincos(dim: int, side: int) -> torch.Tensor:
    """Row-major positions; first half of the channels from the column, second from the row."""
    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        freq = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        angle = np.outer(pos.reshape(-1), freq)
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)

    cols, rows = np.meshgrid(np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64))
    table = np.concatenate([one_d(dim // 2, cols), one_d(dim // 2, rows)], axis=1)
    return torch.from_numpy(table).float()


def _ln(x, sd, name):
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _lin(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _block(x, sd, name, heads):
    b, n, c = x.shape
    h = _ln(x, sd, f"{name}.norm1")
    q, k, v = _lin(h, sd, f"{name}.attn.qkv").reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    weights = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
    x = x + _lin((weights @ v).transpose(1, 2).reshape(b, n, c), sd, f"{name}.attn.proj")
    h = _lin(F.gelu(_lin(_ln(x, sd, f"{name}.norm2"), sd, f"{name}.mlp.fc1")), sd, f"{name}.mlp.fc2")
    return x + h


def _select(x, idx):
    return torch.stack([x[b, idx[b]] for b in range(x.shape[0])])


def reference_encoder(sd, images, masks=None):
    x = F.conv2d(images, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2) + sd["pos_embed"]
    if masks is not None:
        x = _select(x, masks)
    for i in range(DEPTH):
        x = _block(x, sd, f"blocks.{i}", HEADS)
    return _ln(x, sd, "norm")


def reference_predictor(sd, context, context_idx, target_idx):
    pos = sd["predictor_pos_embed"][0]
    x = _lin(context, sd, "predictor_embed") + pos[context_idx]
    queries = torch.cat([sd["mask_token"] + pos[t] for t in target_idx])
    x = torch.cat([x.repeat(len(target_idx), 1, 1), queries], dim=1)
    for i in range(PRED_DEPTH):
        x = _block(x, sd, f"predictor_blocks.{i}", HEADS)
    out = _lin(_ln(x, sd, "predictor_norm")[:, context.shape[1]:], sd, "predictor_proj")
    return list(out.split(context.shape[0]))


# -- an official-layout checkpoint ---------------------------------------------------------

def _block_weights(g, prefix, dim):
    def rnd(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    return {
        f"{prefix}.norm1.weight": 1 + rnd(dim), f"{prefix}.norm1.bias": rnd(dim),
        f"{prefix}.attn.qkv.weight": rnd(3 * dim, dim), f"{prefix}.attn.qkv.bias": rnd(3 * dim),
        f"{prefix}.attn.proj.weight": rnd(dim, dim), f"{prefix}.attn.proj.bias": rnd(dim),
        f"{prefix}.norm2.weight": 1 + rnd(dim), f"{prefix}.norm2.bias": rnd(dim),
        f"{prefix}.mlp.fc1.weight": rnd(4 * dim, dim), f"{prefix}.mlp.fc1.bias": rnd(4 * dim),
        f"{prefix}.mlp.fc2.weight": rnd(dim, 4 * dim), f"{prefix}.mlp.fc2.bias": rnd(dim),
    }


def official_encoder(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {"patch_embed.proj.weight": torch.randn(WIDTH, 3, PATCH, PATCH, generator=g) * 0.1,
          "patch_embed.proj.bias": torch.randn(WIDTH, generator=g) * 0.1,
          "pos_embed": reference_sincos(WIDTH, SIDE).unsqueeze(0)}
    for i in range(DEPTH):
        sd.update(_block_weights(g, f"blocks.{i}", WIDTH))
    sd["norm.weight"] = 1 + torch.randn(WIDTH, generator=g) * 0.05
    sd["norm.bias"] = torch.randn(WIDTH, generator=g) * 0.05
    return sd


def official_predictor(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {"predictor_embed.weight": torch.randn(PRED_WIDTH, WIDTH, generator=g) * 0.05,
          "predictor_embed.bias": torch.randn(PRED_WIDTH, generator=g) * 0.05,
          "mask_token": torch.randn(1, 1, PRED_WIDTH, generator=g) * 0.02,
          "predictor_pos_embed": reference_sincos(PRED_WIDTH, SIDE).unsqueeze(0)}
    for i in range(PRED_DEPTH):
        sd.update(_block_weights(g, f"predictor_blocks.{i}", PRED_WIDTH))
    sd.update({"predictor_norm.weight": 1 + torch.randn(PRED_WIDTH, generator=g) * 0.05,
               "predictor_norm.bias": torch.randn(PRED_WIDTH, generator=g) * 0.05,
               "predictor_proj.weight": torch.randn(WIDTH, PRED_WIDTH, generator=g) * 0.05,
               "predictor_proj.bias": torch.randn(WIDTH, generator=g) * 0.05})
    return sd


def _ddp(sd):
    return {f"module.{k}": v for k, v in sd.items()}


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """An official-layout checkpoint file and its (unprefixed) state dicts."""
    encoder, target, predictor = official_encoder(1), official_encoder(2), official_predictor(3)
    params = [torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4))]
    opt = torch.optim.AdamW(params)
    sum(p.sum() for p in params).backward()
    opt.step()
    path = tmp_path_factory.mktemp("official") / "IN1K-vit.t.4-3e.pth.tar"
    torch.save({"encoder": _ddp(encoder), "predictor": _ddp(predictor),
                "target_encoder": _ddp(target), "opt": opt.state_dict(), "scaler": None,
                "epoch": 3, "loss": 0.25, "batch_size": 8, "world_size": 1, "lr": 1e-3}, path)
    return {"path": path, "encoder": encoder, "target": target, "predictor": predictor}


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "vitt4.pt"
    assert main(["convert", "ijepa-official", str(official["path"]), str(out)]) == 0
    return checkpoint.load(out)


def _images(n=3):
    return torch.randn(n, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(7))


def test_reference_table_is_the_official_layout():
    # Position 1 is one step along the row (column 1): the column half moves, the row half not.
    table = reference_sincos(8, 3)
    assert torch.equal(table[0, 4:], table[1, 4:]) and not torch.equal(table[0, :4], table[1, :4])
    assert torch.equal(table[0, :4], table[3, :4])  # position 3 = row 1, column 0


def test_converted_target_encoder_matches_official_features(official, converted):
    encoder, spec = encoder_from_state(converted, "target")
    assert spec == {"name": "vit", "params": {
        "size": "tiny", "image_size": IMAGE, "patch_size": PATCH, "in_chans": 3,
        "embed_dim": WIDTH, "depth": DEPTH, "num_heads": HEADS, "mlp_ratio": 4.0}}
    images = _images()
    with torch.no_grad():
        ours = encoder(images)
        theirs = reference_encoder(official["target"], images)
    assert ours.shape == (3, SIDE * SIDE, WIDTH)
    difference = float((ours - theirs).abs().max())
    print(f"target encoder: max feature difference {difference:.2e}")
    assert difference <= TOLERANCE
    # The online encoder is the other state dict, and masked inputs agree too.
    online, _ = encoder_from_state(converted, "online")
    keep = torch.stack([torch.randperm(SIDE * SIDE, generator=torch.Generator().manual_seed(b))[:7]
                        for b in range(3)])
    with torch.no_grad():
        difference = float((online(images, keep) -
                            reference_encoder(official["encoder"], images, keep)).abs().max())
    assert difference <= TOLERANCE


def test_converted_predictor_matches_official_predictions(official, converted):
    from jepakit.registry import default_registry

    spec = converted["recipe"]["predictor"]
    assert spec["params"] == {"embed_dim": PRED_WIDTH, "depth": PRED_DEPTH, "num_heads": HEADS,
                              "mlp_ratio": 4.0}
    predictor = default_registry().create("predictor", "ijepa", spec["params"],
                                          embed_dim=WIDTH, patch_grid=(SIDE, SIDE))
    predictor.load_state_dict(converted["predictor"])
    g = torch.Generator().manual_seed(3)
    context = torch.randn(2, 6, WIDTH, generator=g)
    context_idx = torch.stack([torch.randperm(16, generator=g)[:6] for _ in range(2)])
    targets = [torch.stack([torch.randperm(16, generator=g)[:4] for _ in range(2)]) for _ in range(2)]
    with torch.no_grad():
        ours = predictor(context, context_idx, targets)
        theirs = reference_predictor(official["predictor"], context, context_idx, targets)
    assert max(float((a - b).abs().max()) for a, b in zip(ours, theirs)) <= TOLERANCE


def test_converted_file_records_its_source(official, converted):
    assert converted["source"] == {"kind": "ijepa-official", "path": str(official["path"]),
                                   "epoch": 3}
    assert "pos_embed" not in converted["target_encoder"]
    assert not any(k.startswith("module.") for k in converted["encoder"])


def test_cli_reports_what_it_converted(official, tmp_path, capsys):
    out = tmp_path / "w.pt"
    assert main(["convert", "ijepa-official", str(official["path"]), str(out)]) == 0
    text = capsys.readouterr().out
    assert "vit width 192, depth 2, heads 3, patch 4, 16 px (4x4 grid)" in text
    assert "not converted: batch_size, epoch, loss, lr, opt, scaler, world_size" in text
    assert main(["convert", "ijepa-official", str(official["path"]), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jepakit: error:"), err
    return lines[0]


@pytest.mark.parametrize("case", ["missing", "format", "garbage", "code", "learned_pos", "keys"])
def test_user_mistakes_exit_2_with_one_line(case, official, tmp_path, capsys):
    src = tmp_path / "in.pth.tar"
    fmt = "ijepa-official"
    expect = {"missing": "not found", "format": "did you mean 'ijepa-official'",
              "garbage": "weights_only=True", "code": "weights_only=True",
              "learned_pos": "not the fixed 2-D sin-cos", "keys": "neither 'encoder'"}[case]
    if case == "format":
        fmt, src = "ijepa-oficial", official["path"]
    elif case == "garbage":
        src.write_bytes(b"not a checkpoint")
    elif case == "code":  # a pickled object: weights_only refuses to run its code
        torch.save({"encoder": official["encoder"], "x": JepakitError("boom")}, src)
    elif case == "learned_pos":
        learned = dict(official["encoder"], pos_embed=torch.randn(1, SIDE * SIDE, WIDTH))
        torch.save({"encoder": learned}, src)
    elif case == "keys":
        torch.save({"model": {}}, src)
    assert main(["convert", fmt, str(src), str(tmp_path / "out.pt")]) == 2
    assert expect in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "out.pt").exists()


def test_other_widths_need_the_head_count(official, tmp_path):
    narrow = {k: v for k, v in official_encoder(4).items()}
    # a width no official model has: 64 channels
    g = torch.Generator().manual_seed(5)
    narrow = {k: torch.randn(*(64 if s == WIDTH else 4 * 64 if s == 4 * WIDTH else
                               3 * 64 if s == 3 * WIDTH else s for s in v.shape), generator=g)
              for k, v in narrow.items()}
    narrow["pos_embed"] = reference_sincos(64, SIDE).unsqueeze(0)
    src = tmp_path / "narrow.pth.tar"
    torch.save({"encoder": narrow}, src)
    with pytest.raises(JepakitError, match="num_heads=N"):
        convert_ijepa_official(src, tmp_path / "a.pt")
    report = convert_ijepa_official(src, tmp_path / "b.pt", num_heads=4)
    assert report.encoder["num_heads"] == 4 and report.predictor is None
    encoder, _ = encoder_from_state(checkpoint.load(tmp_path / "b.pt"))
    assert encoder(_images(1)).shape == (1, SIDE * SIDE, 64)
    assert math.isclose(report.encoder["mlp_ratio"], 4.0)


def test_official_checkpoint_converts_and_leaves_for_timm(official, converted, tmp_path):
    """official layout -> jepakit -> timm: timm's features are the official model's."""
    import timm
    from safetensors.torch import load_file

    src = tmp_path / "vitt4.pt"
    checkpoint.save_atomic(converted, src)
    out = tmp_path / "timm"
    assert main(["export", str(src), "--format", "timm", str(out)]) == 0
    config = __import__("json").loads((out / "config.json").read_text())
    model = timm.create_model(config["architecture"], **config["model_args"]).eval()
    model.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
    images = _images()
    with torch.no_grad():
        theirs = reference_encoder(official["target"], images)
        difference = float((model.forward_features(images) - theirs).abs().max())
        pooled = float((model(images) - theirs.mean(dim=1)).abs().max())
    print(f"official -> timm: max feature difference {difference:.2e}, pooled {pooled:.2e}")
    assert difference <= TOLERANCE and pooled <= TOLERANCE
