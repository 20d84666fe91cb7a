"""Weights in and out of jepakit: encoders out (checkpoint converters are plugins:
``jepakit_converters``, ``jepakit convert NAME IN OUT``).

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

__all__ = [
    "encoder_from_state",
    "export_safetensors",
    "export_timm",
    "load_safetensors_encoder",
    "load_source",
    "timm_layout",
]
