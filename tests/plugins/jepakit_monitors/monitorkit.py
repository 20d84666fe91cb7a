"""Shared settings of the monitors tests (imported by name, like tests/plugins/jepakit_data/shardkit)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "recipes" / "ijepa_tiny.yaml"
TINY_MODEL = [
    "encoder.params.image_size=16", "encoder.params.patch_size=4", "encoder.params.embed_dim=32",
    "encoder.params.depth=2", "encoder.params.num_heads=2", "predictor.params.embed_dim=16",
    "predictor.params.depth=1", "predictor.params.num_heads=2", "train.device=cpu",
    "masker.params.min_keep=2",
]
