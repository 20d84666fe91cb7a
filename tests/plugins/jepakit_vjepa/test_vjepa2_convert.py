"""`jepakit convert vjepa2`: a checkpoint in the released V-JEPA 2 layout converts, and
jepakit's modules then compute what the official model computes; a partial load is refused.

No official checkpoint can be downloaded here, so the test writes one: the layout of
vjepa2's ``app/vjepa/train.py`` saves (``encoder``/``predictor``/``target_encoder`` with
every name under ``module.backbone.``, a stored ``pos_embed`` the RoPE model never reads,
``opt``, ``epoch``, ...) with random weights. ``reference_*`` is a small re-statement of
the official forward (Conv3d tubelets, manual softmax attention, ``RoPEAttention``'s
rotation from token ids, the predictor's sort by position and mask token ``mask_index``),
written from the released code's behaviour.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from jepakit_vjepa.official import VJEPA2ConvertConfig, convert_vjepa2_file
from vjepa_helpers import official_rope_3d, official_sincos_3d

from jepakit.cli import main
from jepakit.errors import JepakitError
from jepakit.interop import encoder_from_state

torch.set_num_threads(1)

WIDTH, DEPTH, HEADS = 48, 2, 2  # head dim 24: three RoPE segments of 8, nothing left over
PRED_WIDTH, PRED_DEPTH, PRED_HEADS, MASK_TOKENS = 40, 2, 2, 3  # head dim 20: 6 x 3 + 2 unrotated
PATCH, TUBELET, IMAGE, FRAMES = 4, 2, 16, 4
GRID = (FRAMES // TUBELET, IMAGE // PATCH, IMAGE // PATCH)
N = GRID[0] * GRID[1] * GRID[2]
SETTINGS = {"image_size": IMAGE, "num_frames": FRAMES, "num_heads": HEADS,
            "predictor_num_heads": PRED_HEADS}


# -- a re-statement of the official forward -----------------------------------------------

def _ln(x, sd, name):
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _lin(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _block(x, ids, sd, name, heads):
    b, n, c = x.shape
    qkv = _lin(_ln(x, sd, f"{name}.norm1"), sd, f"{name}.attn.qkv")
    q, k, v = qkv.unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4)
    q = torch.stack([official_rope_3d(q[i], ids[i], GRID) for i in range(b)])
    k = torch.stack([official_rope_3d(k[i], ids[i], GRID) for i in range(b)])
    weights = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(dim=-1)
    x = x + _lin((weights @ v).transpose(1, 2).reshape(b, n, c), sd, f"{name}.attn.proj")
    return x + _lin(F.gelu(_lin(_ln(x, sd, f"{name}.norm2"), sd, f"{name}.mlp.fc1")), sd,
                    f"{name}.mlp.fc2")


def reference_encoder(sd, clips, masks=None):
    x = F.conv3d(clips, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"],
                 stride=(TUBELET, PATCH, PATCH)).flatten(2).transpose(1, 2)
    ids = torch.arange(N).expand(x.shape[0], N)
    if masks is not None:
        x = torch.stack([x[i, masks[i]] for i in range(x.shape[0])])
        ids = masks
    for i in range(DEPTH):
        x = _block(x, ids, sd, f"blocks.{i}", HEADS)
    return _ln(x, sd, "norm")


def reference_predictor(sd, ctx, masks_x, masks_y, mask_index):
    b = ctx.shape[0]
    x = _lin(ctx, sd, "predictor_embed")
    n_ctxt = x.shape[1]
    token = sd[f"mask_tokens.{mask_index % MASK_TOKENS}"]
    pred = token.repeat(b, N, 1)
    pred = torch.stack([pred[i, masks_y[i]] for i in range(b)])
    x = torch.cat([x, pred], dim=1)
    masks = torch.cat([masks_x, masks_y], dim=1)
    order = masks.argsort(dim=1)  # the official code sorts tokens by position
    masks = torch.stack([masks[i, order[i]] for i in range(b)])
    x = torch.stack([x[i, order[i]] for i in range(b)])
    for i in range(PRED_DEPTH):
        x = _block(x, masks, sd, f"predictor_blocks.{i}", PRED_HEADS)
    x = _ln(x, sd, "predictor_norm")
    back = order.argsort(dim=1)
    x = torch.stack([x[i, back[i]] for i in range(b)])[:, n_ctxt:]
    return _lin(x, sd, "predictor_proj")


# -- a checkpoint in the released layout ---------------------------------------------------

def _blocks(g, prefix, dim, depth):
    def rnd(*shape, scale=0.08):
        return torch.randn(*shape, generator=g) * scale

    sd = {}
    for i in range(depth):
        p = f"{prefix}.{i}"
        sd.update({
            f"{p}.norm1.weight": 1 + rnd(dim), f"{p}.norm1.bias": rnd(dim),
            f"{p}.attn.qkv.weight": rnd(3 * dim, dim), f"{p}.attn.qkv.bias": rnd(3 * dim),
            f"{p}.attn.proj.weight": rnd(dim, dim), f"{p}.attn.proj.bias": rnd(dim),
            f"{p}.norm2.weight": 1 + rnd(dim), f"{p}.norm2.bias": rnd(dim),
            f"{p}.mlp.fc1.weight": rnd(4 * dim, dim), f"{p}.mlp.fc1.bias": rnd(4 * dim),
            f"{p}.mlp.fc2.weight": rnd(dim, 4 * dim), f"{p}.mlp.fc2.bias": rnd(dim)})
    return sd


def official_encoder(seed):
    g = torch.Generator().manual_seed(seed)
    sd = {"patch_embed.proj.weight": torch.randn(WIDTH, 3, TUBELET, PATCH, PATCH, generator=g) * 0.1,
          "patch_embed.proj.bias": torch.randn(WIDTH, generator=g) * 0.1,
          **_blocks(g, "blocks", WIDTH, DEPTH),
          "norm.weight": 1 + torch.randn(WIDTH, generator=g) * 0.05,
          "norm.bias": torch.randn(WIDTH, generator=g) * 0.05}
    return sd


def official_predictor(seed):
    g = torch.Generator().manual_seed(seed)
    sd = {"predictor_embed.weight": torch.randn(PRED_WIDTH, WIDTH, generator=g) * 0.1,
          "predictor_embed.bias": torch.randn(PRED_WIDTH, generator=g) * 0.1,
          **{f"mask_tokens.{i}": torch.randn(1, 1, PRED_WIDTH, generator=g)
             for i in range(MASK_TOKENS)},
          **_blocks(g, "predictor_blocks", PRED_WIDTH, PRED_DEPTH),
          "predictor_norm.weight": 1 + torch.randn(PRED_WIDTH, generator=g) * 0.05,
          "predictor_norm.bias": torch.randn(PRED_WIDTH, generator=g) * 0.05,
          "predictor_proj.weight": torch.randn(WIDTH, PRED_WIDTH, generator=g) * 0.1,
          "predictor_proj.bias": torch.randn(WIDTH, generator=g) * 0.1}
    return sd


def released(sd, pos_embed=True):
    """``module.backbone.`` on every name; a stored (unused) pos_embed."""
    out = {f"module.backbone.{k}": v for k, v in sd.items()}
    if pos_embed:
        out["module.backbone.pos_embed"] = torch.randn(1, N, WIDTH)
    return out


def write_checkpoint(path, encoder=None, predictor=None, target=None):
    encoder = encoder if encoder is not None else released(official_encoder(0))
    target = target if target is not None else released(official_encoder(1))
    predictor = predictor if predictor is not None else {
        f"module.backbone.{k}": v for k, v in official_predictor(2).items()}
    torch.save({"encoder": encoder, "predictor": predictor, "target_encoder": target,
                "opt": {"state": {}, "param_groups": []}, "scaler": None, "epoch": 7,
                "loss": 0.42, "batch_size": 24, "world_size": 8, "lr": 5.25e-4}, path)


def convert(tmp_path, **settings):
    src, dst = tmp_path / "vitl.pt", tmp_path / "out.pt"
    if not src.exists():
        write_checkpoint(src)
    lines = convert_vjepa2_file(src, dst, VJEPA2ConvertConfig(**{**SETTINGS, **settings}))
    return torch.load(dst, weights_only=True), lines


# -- the tests ------------------------------------------------------------------------------

def test_converted_encoders_compute_the_official_features(tmp_path):
    state, lines = convert(tmp_path)
    assert any("pos_embed" in line and "unused under RoPE" in line for line in lines)
    assert any("not converted: batch_size, epoch, loss, lr, opt, scaler, world_size" in line
               for line in lines)
    clips = torch.randn(2, 3, FRAMES, IMAGE, IMAGE)
    keep = torch.stack([torch.randperm(N)[:11] for _ in range(2)])
    for which, seed in (("target", 1), ("online", 0)):
        encoder, spec = encoder_from_state(state, which=which)
        assert spec["name"] == "vit_video" and encoder.patch_grid == GRID
        sd = official_encoder(seed)
        with torch.no_grad():
            torch.testing.assert_close(encoder(clips), reference_encoder(sd, clips),
                                       rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(encoder(clips, keep=keep), reference_encoder(sd, clips, keep),
                                       rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mask_index", [0, 2])
def test_the_converted_predictor_computes_the_official_prediction(tmp_path, mask_index):
    from jepakit.registry import default_registry

    state, _ = convert(tmp_path)
    spec = state["recipe"]["predictor"]
    assert spec["params"]["num_mask_tokens"] == MASK_TOKENS
    pred = default_registry().create("predictor", spec["name"], spec["params"],
                                     embed_dim=WIDTH, patch_grid=GRID)
    pred.load_state_dict(state["predictor"], strict=True)
    order = torch.stack([torch.randperm(N) for _ in range(2)])
    ctx_idx, tgt_idx = order[:, :20], order[:, 20:27]
    ctx = torch.randn(2, 20, WIDTH)
    with torch.no_grad():
        ours = pred.eval()(ctx, ctx_idx, [tgt_idx], mask_index=mask_index)[0]
    theirs = reference_predictor(official_predictor(2), ctx, ctx_idx, tgt_idx, mask_index)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_a_missing_key_is_refused_and_named(tmp_path):
    predictor = {f"module.backbone.{k}": v for k, v in official_predictor(2).items()
                 if not k.startswith("predictor_blocks.1.attn.proj.")}
    write_checkpoint(tmp_path / "vitl.pt", predictor=predictor)
    with pytest.raises(JepakitError, match=r"'predictor' .*missing blocks\.1\.attn\.proj\.bias, "
                                           r"blocks\.1\.attn\.proj\.weight"):
        convert(tmp_path)
    assert not (tmp_path / "out.pt").exists()


def test_an_unexpected_key_is_refused_and_named(tmp_path):
    encoder = released(official_encoder(0))
    encoder["module.backbone.blocks.0.mlp.fc3.weight"] = torch.zeros(WIDTH, 4 * WIDTH)  # SwiGLU
    write_checkpoint(tmp_path / "vitl.pt", encoder=encoder)
    with pytest.raises(JepakitError, match=r"'encoder' .*unexpected blocks\.0\.mlp\.fc3\.weight"):
        convert(tmp_path)


def test_a_wrong_shape_is_refused(tmp_path):
    target = released(official_encoder(1))
    target["module.backbone.norm.bias"] = torch.zeros(WIDTH + 1)
    write_checkpoint(tmp_path / "vitl.pt", target=target)
    with pytest.raises(JepakitError, match="target_encoder.*norm.bias"):
        convert(tmp_path)


def test_sincos_checkpoints_need_the_matching_table(tmp_path):
    enc = official_encoder(0)
    table = torch.from_numpy(official_sincos_3d(WIDTH, GRID[1], GRID[0])).float()[None]
    good = {**released(enc, pos_embed=False), "module.backbone.pos_embed": table}
    write_checkpoint(tmp_path / "vitl.pt", encoder=good, target=good)
    with pytest.raises(JepakitError, match="predictor_pos_embed"):  # the predictor has none
        convert(tmp_path, positions="sincos")
    bad = {**good, "module.backbone.pos_embed": table + 0.1}
    write_checkpoint(tmp_path / "vitl.pt", encoder=bad, target=bad)
    with pytest.raises(JepakitError, match="not jepakit's 3-D sin-cos table"):
        convert(tmp_path, positions="sincos")


def test_the_cli_converts_and_lists_the_converter(tmp_path, capsys):
    src = tmp_path / "vitl.pt"
    write_checkpoint(src)
    settings = [f"{k}={v}" for k, v in SETTINGS.items()]
    assert main(["convert", "vjepa2", str(src), str(tmp_path / "o.pt"), *settings]) == 0
    out = capsys.readouterr().out
    assert "encoder: vit_video width 48, depth 2, heads 2" in out
    assert "predictor: vjepa width 40, depth 2, heads 2, 3 mask tokens" in out
    assert main(["convert", "vjepa2", str(src), str(tmp_path / "o.pt")]) == 2  # exists
    assert "exists" in capsys.readouterr().err


def test_an_unknown_width_needs_num_heads(tmp_path):
    src = tmp_path / "vitl.pt"
    write_checkpoint(src)
    with pytest.raises(JepakitError, match="num_heads=N"):
        convert_vjepa2_file(src, tmp_path / "o.pt", VJEPA2ConvertConfig(image_size=IMAGE,
                                                                        num_frames=FRAMES))
