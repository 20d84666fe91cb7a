"""Where and in what precision a run executes, and its seeds."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from jepakit.errors import ConfigError


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    return device


def configure_device(device: torch.device, static_shapes: bool = False) -> None:
    """Process-wide kernel choices for JEPA training on ``device``.

    JEPA token counts change every step (context and target sizes are drawn per
    batch), and cuDNN's fused attention builds and caches a new graph for every new
    shape: measured on an H200 (torch 2.11), 3.4 ms of host time per forward call and
    5.3 ms per backward, which made a ViT-B/16 step 4.5x slower than its GPU work.
    Flash and memory-efficient attention take any length at no set-up cost, so
    cuDNN's is switched off, unless ``static_shapes`` (a compiled step whose masker draws
    from a few token counts, ``length_buckets``): then each shape builds its cuDNN graph
    once, and cuDNN's kernels serve head widths (ViT-H's 80) that flash attention pads.
    ``JEPAKIT_CUDNN_ATTENTION=0`` or ``1`` overrides the choice.
    """
    if device.type == "cuda":
        choice = os.environ.get("JEPAKIT_CUDNN_ATTENTION", "")
        torch.backends.cuda.enable_cudnn_sdp(choice == "1" if choice in ("0", "1") else static_shapes)


def select_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. ``auto``: bf16 on CUDA, fp32 on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    return torch.bfloat16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); without
    it torch emulates bf16 matmuls, tens of times slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def default_device(device: str | torch.device) -> Iterator[None]:
    with torch.device(device):
        yield
