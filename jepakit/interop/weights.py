"""Small helpers for reading foreign weights, shared by ``jepakit export`` and the
checkpoint converters that plugins register (``jepakit convert``)."""

from __future__ import annotations

import math

from jepakit.errors import JepakitError


def mlp_ratio(hidden: int, dim: int) -> float:
    """A ratio with ``int(dim * ratio) == hidden``, as the ViTs compute the MLP width."""
    ratio = hidden / dim
    for _ in range(4):
        if int(dim * ratio) == hidden:
            return ratio
        ratio = math.nextafter(ratio, math.inf)
    raise JepakitError(f"cannot express an MLP width of {hidden} for width {dim} as a ratio")


def one_line_reason(exc: Exception | str) -> str:
    """One line out of torch.load's multi-line messages: the unpickler's own reason."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error:"):
            rest = line[len("WeightsUnpickler error:"):].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else "unknown reason"
