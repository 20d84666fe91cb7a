"""loss.png: the loss curve (and the monitors, when logged) of a run, drawn with Pillow.

"Is my loss curve normal?" is the first question of every I-JEPA user; the
picture is written at the end of each run so the answer needs no tooling. The
I-JEPA loss usually falls fast for a few hundred steps, then slowly, and may
rise a little while the EMA target keeps changing; docs/monitoring.md shows a
healthy run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PANELS: tuple[tuple[str, str], ...] = (
    ("loss", "loss"),
    ("rankme", "RankMe (target features)"),
    ("target_std", "target spread (normalised std)"),
    ("knn_top1", "k-NN top-1"),
)
"""Metric key and title of each panel; a panel appears when its key was logged."""

WIDTH, PANEL_H, MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 720, 240, 70, 20, 28, 34
INK, GRID, LINE, SMOOTH = (20, 20, 20), (225, 225, 225), (160, 190, 230), (0, 90, 200)


def read_metrics(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a crash
    return records


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for evenly spaced ticks, with as many digits as their spacing needs: a
    RankMe axis from 14.18 to 14.23 reads 14.18, 14.19, ..., not "14.2" five times."""
    if len(ticks) < 2:
        return [_fmt(t) for t in ticks]
    step = abs(ticks[1] - ticks[0])
    top = max(abs(t) for t in ticks)
    digits = -math.floor(math.log10(step) + 1e-9)  # decimals that tell the ticks apart
    if top >= 1e5 or top < 1e-3:  # scientific, with mantissa digits down to the step
        mantissa = max(0, math.floor(math.log10(top) + 1e-9) + digits)
        return [f"{t:.{mantissa}e}" if t else "0" for t in ticks]
    return [f"{t:.{max(0, digits)}f}" if abs(t) > step / 2 else "0"
            for t in ticks]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.4g}"  # RankMe 14.18 and 14.23 must not both read 14.2


def smooth(values: Sequence[float], half_width: int) -> list[float]:
    """Centred moving average (no lag, unlike an EMA), shrinking at the ends."""
    out = []
    for i in range(len(values)):
        lo, hi = max(0, i - half_width), min(len(values), i + half_width + 1)
        out.append(sum(values[lo:hi]) / (hi - lo))
    return out


def _panel(draw: ImageDraw.ImageDraw, top: int, title: str, steps: list[int],
           values: list[float], font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
           x_range: tuple[int, int]) -> None:
    x0, x1 = MARGIN_L, WIDTH - MARGIN_R
    y0, y1 = top + MARGIN_T, top + PANEL_H - MARGIN_B
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    s0, s1 = x_range  # every panel shares the loss panel's step axis
    span = max(s1 - s0, 1)

    def xy(s: float, v: float) -> tuple[float, float]:
        return x0 + (s - s0) / span * (x1 - x0), y1 - (v - lo) / (hi - lo) * (y1 - y0)

    draw.text((x0, top + 6), f"{title}   (last {_fmt(values[-1])}, min {_fmt(min(values))})",
              fill=INK, font=font)
    ticks = _ticks(lo, hi)
    for t, label in zip(ticks, tick_labels(ticks)):
        y = xy(s0, t)[1]
        draw.line([x0, y, x1, y], fill=GRID)
        draw.text((4, y - 6), label, fill=INK, font=font)
    for t in _ticks(s0, s1):
        x = xy(t, lo)[0]
        draw.line([x, y0, x, y1], fill=GRID)
        draw.text((x - 3 * len(str(int(t))), y1 + 4), str(int(t)), fill=INK, font=font)
    draw.rectangle([x0, y0, x1, y1], outline=INK)
    points = [xy(s, v) for s, v in zip(steps, values)]
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=SMOOTH)
        return
    if len(points) >= 40:  # raw in light blue, smoothed over ~5% of the run in bold
        draw.line(points, fill=LINE, width=1)
        values = smooth(values, max(1, len(values) // 40))
        draw.line([xy(s, v) for s, v in zip(steps, values)], fill=SMOOTH, width=2)
    else:
        draw.line(points, fill=SMOOTH, width=2)


def draw_curves(records: list[dict], title: str = "") -> Image.Image | None:
    """One panel per logged series of :data:`PANELS`; None when no loss was logged."""
    series = []
    for key, name in PANELS:
        pts = [(int(r["step"]), float(r[key])) for r in records
               if isinstance(r.get(key), (int, float)) and "step" in r
               and math.isfinite(float(r[key]))]
        if pts:
            series.append((name, [p[0] for p in pts], [p[1] for p in pts]))
    if not series or series[0][0] != "loss":
        return None
    font = ImageFont.load_default()
    head = 22 if title else 0
    image = Image.new("RGB", (WIDTH, head + PANEL_H * len(series) + 16), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((MARGIN_L, 6), title, fill=INK, font=font)
    x_range = (min(series[0][1]), max(series[0][1]))
    for i, (name, steps, values) in enumerate(series):
        _panel(draw, head + i * PANEL_H, name, steps, values, font, x_range)
    draw.text((WIDTH // 2 - 12, image.height - 14), "step", fill=INK, font=font)
    return image


def write_loss_png(run_dir: Path, title: str = "") -> Path | None:
    """Draw ``run_dir/metrics.jsonl`` into ``run_dir/loss.png``; None if nothing to draw."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return None
    image = draw_curves(read_metrics(metrics), title)
    if image is None:
        return None
    out = run_dir / "loss.png"
    tmp = run_dir / ".loss.png.tmp"
    image.save(tmp, format="PNG")
    tmp.replace(out)
    return out
