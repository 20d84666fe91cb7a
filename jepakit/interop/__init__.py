"""Weights in and out of jepakit: official I-JEPA checkpoints in, encoders out.

    convert_ijepa_official(src, dst)       the official layout -> a jepakit weights file
    load_source(run_dir_or_checkpoint)     a run's newest checkpoint, or one file
    encoder_from_state(state)              rebuild the (target) encoder it holds
    export_safetensors(encoder, spec, out) the encoder as safetensors (+ its recipe section)
    export_timm(encoder, out_dir)          a timm model folder (``local-dir:``) that loads strictly

The CLI front ends are ``jepakit convert`` and ``jepakit export`` (docs/interop.md).
"""

from jepakit.interop.export import (
    encoder_from_state,
    export_safetensors,
    export_timm,
    load_safetensors_encoder,
    load_source,
    timm_layout,
)
from jepakit.interop.ijepa_official import ConversionReport, convert_ijepa_official

__all__ = [
    "ConversionReport",
    "convert_ijepa_official",
    "encoder_from_state",
    "export_safetensors",
    "export_timm",
    "load_safetensors_encoder",
    "load_source",
    "timm_layout",
]
