"""Pictures of masks, with Pillow: sampled context and targets over images, and
coverage heatmaps. Users compare maskers by looking (``jepakit masks show``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from jepakit.contracts import Masks
from jepakit.coverage import Coverage
from jepakit.errors import JepakitError

TARGET_COLOURS = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
]
"""One colour per target mask (cycled)."""

_RAMP = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
"""A perceptually ordered ramp (dark violet to yellow) for probabilities 0..1."""

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
NEVER = (220, 0, 0)


class OutputError(JepakitError):
    """An output file that cannot be written."""


def check_output(path: str | Path) -> Path:
    """``path`` if a file can be written there (its folder exists), else OutputError."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"cannot write {p}: it is a directory")
    if not p.parent.is_dir():
        raise OutputError(f"cannot write {p}: folder {p.parent} does not exist")
    return p


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as PNG (whatever the suffix); OutputError when that fails."""
    p = check_output(path)
    try:
        image.save(p, format="PNG")
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def to_pil(image: torch.Tensor) -> Image.Image:
    """An image tensor [C, H, W] (any range, e.g. normalised) as an RGB picture,
    each image stretched to the full range."""
    x = image.detach().float().cpu()
    if x.dim() == 2:
        x = x.unsqueeze(0)
    x = x[:3] if x.shape[0] >= 3 else x[:1].expand(3, -1, -1)
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    array = (x * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _cells(indices: torch.Tensor, grid: Sequence[int], frame: int = 0) -> list[tuple[int, int]]:
    """(row, column) of the patches in ``indices`` that lie in token frame ``frame`` (on an
    image grid, all of them)."""
    if len(grid) == 2:
        return [divmod(int(i), int(grid[1])) for i in indices.tolist()]
    per_frame = int(grid[1]) * int(grid[2])
    return [divmod(int(i) % per_frame, int(grid[2])) for i in indices.tolist()
            if int(i) // per_frame == frame]


def _panel_context(picture: Image.Image, context: list[tuple[int, int]], cell: tuple[float, float]
                   ) -> Image.Image:
    """The image where it is context; grey elsewhere."""
    out = Image.new("RGB", picture.size, (128, 128, 128))
    ch, cw = cell
    mask = Image.new("L", picture.size, 0)
    draw = ImageDraw.Draw(mask)
    for r, c in context:
        draw.rectangle([c * cw, r * ch, (c + 1) * cw - 1, (r + 1) * ch - 1], fill=255)
    out.paste(picture, (0, 0), mask)
    return out


def _panel_targets(picture: Image.Image, targets: list[list[tuple[int, int]]],
                   cell: tuple[float, float], colours: list[int] | None = None) -> Image.Image:
    """The image dimmed, each target tinted in its colour (``colours``: index into
    :data:`TARGET_COLOURS` per target, default 0, 1, ...)."""
    out = Image.blend(picture, Image.new("RGB", picture.size, (0, 0, 0)), 0.55).convert("RGBA")
    ch, cw = cell
    for j, patches in enumerate(targets):
        layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        k = j if colours is None else colours[j]
        colour = TARGET_COLOURS[k % len(TARGET_COLOURS)]
        for r, c in patches:
            draw.rectangle([c * cw, r * ch, (c + 1) * cw - 1, (r + 1) * ch - 1],
                           fill=(*colour, 120), outline=(*colour, 255))
        out = Image.alpha_composite(out, layer)
    return out.convert("RGB")


def shown_frames(token_frames: int, count: int) -> list[int]:
    """Up to ``count`` token frames, evenly spaced from the first to the last."""
    if count >= token_frames:
        return list(range(token_frames))
    if count <= 1:
        return [0]
    return sorted({round(i * (token_frames - 1) / (count - 1)) for i in range(count)})


def _frame_image(image: torch.Tensor, grid: Sequence[int], frame: int) -> torch.Tensor:
    """The picture [C, H, W] under token frame ``frame``: the first frame of its tubelet
    (a clip [C, T, H, W]; an image [C, H, W] is a still clip)."""
    if len(grid) == 2 or image.dim() < 4:
        return image
    step = max(image.shape[1] // int(grid[0]), 1)
    return image[:, min(frame * step, image.shape[1] - 1)]


def _rows(masks: Masks, pairing: str) -> list[tuple[str, list[int], list[int]]]:
    """(label, context masks, target masks) per row below the image row: the union of the
    contexts and every target (pairing "all"), or one context and one target row per
    configuration (pairing "zip": ``context[c]`` is only meant for ``targets[c]``)."""
    if pairing == "zip":
        rows = []
        for c in range(min(len(masks.context), len(masks.targets))):
            rows += [(f"context {c}", [c], []), (f"target {c}", [], [c])]
        return rows
    return [("context", list(range(len(masks.context))), []),
            ("targets", [], list(range(len(masks.targets))))]


def draw_samples(images: list[torch.Tensor], masks: Masks, grid: Sequence[int],
                 title: str = "", panel: int = 128, pairing: str = "all",
                 frames: int = 4) -> Image.Image:
    """One column per image: the image, its context (grey where not context) and its
    targets (one colour each). ``masks`` holds one row per image.

    On a video grid (frames, rows, columns) each clip gets ``frames`` columns side by side,
    token frames evenly spaced over the clip, each under its tubelet's first frame.
    With ``pairing="zip"`` (several mask configurations) each configuration gets a
    context row and a target row."""
    rows_label = ["image"] + [label for label, _, _ in _rows(masks, pairing)]
    rows = _rows(masks, pairing)
    video = len(grid) == 3
    picked = shown_frames(int(grid[0]), frames) if video else [0]
    font = _font()
    margin, label_w = 6, 60
    head = (18 if title else 4) + (12 if video else 0)
    gap = 2 * margin if video else 0
    n = len(images)
    column = panel + margin
    width = label_w + n * (len(picked) * column + gap) + margin
    height = head + len(rows_label) * (panel + margin) + margin
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((margin, 3), title, fill=INK, font=font)
    for k, label in enumerate(rows_label):
        draw.text((margin, head + k * (panel + margin) + panel // 2 - 6), label, fill=INK, font=font)
    spatial = (int(grid[-2]), int(grid[-1]))
    cell = (panel / spatial[0], panel / spatial[1])
    for i, image in enumerate(images):
        for f, frame in enumerate(picked):
            picture = to_pil(_frame_image(image, grid, frame)).resize(
                (panel, panel), Image.Resampling.NEAREST)
            panels = [picture]
            for _, ctx, tgt in rows:
                if ctx:
                    cells = [p for c in ctx for p in _cells(masks.context[c][i], grid, frame)]
                    panels.append(_panel_context(picture, cells, cell))
                else:
                    panels.append(_panel_targets(
                        picture, [_cells(masks.targets[j][i], grid, frame) for j in tgt], cell, tgt))
            x = label_w + i * (len(picked) * column + gap) + f * column + margin
            if video:
                draw.text((x, head - 12), f"clip {i} t{frame}", fill=INK, font=font)
            for k, p in enumerate(panels):
                sheet.paste(p, (x, head + k * (panel + margin) + margin))
    return sheet


def ramp(value: float) -> tuple[int, int, int]:
    """Colour of a probability in [0, 1] on :data:`_RAMP`."""
    v = min(max(value, 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(v), len(_RAMP) - 2)
    t = v - i
    a, b = _RAMP[i], _RAMP[i + 1]
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t),
            round(a[2] + (b[2] - a[2]) * t))


def _heatmap(values: torch.Tensor, cell: int, vmax: float) -> Image.Image:
    gh, gw = values.shape
    out = Image.new("RGB", (gw * cell, gh * cell), BACKGROUND)
    draw = ImageDraw.Draw(out)
    for r in range(gh):
        for c in range(gw):
            v = float(values[r, c])
            box = [c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1]
            draw.rectangle(box, fill=ramp(v / vmax if vmax > 0 else 0.0))
            if v == 0:  # never covered: a red cross
                draw.line(box, fill=NEVER, width=2)
                draw.line([box[0], box[3], box[2], box[1]], fill=NEVER, width=2)
    return out


def draw_coverage(cov: Coverage, title: str = "", cell: int | None = None,
                  frames: int = 4) -> Image.Image:
    """Context and target coverage heatmaps side by side, each on its own scale
    from 0 to its maximum; never-covered patches crossed out in red. On a video grid
    each side shows ``frames`` token frames, evenly spaced, one under the other."""
    video = len(cov.grid) == 3
    gh, gw = int(cov.grid[-2]), int(cov.grid[-1])
    picked: list[int | None] = list(shown_frames(int(cov.grid[0]), frames)) if video else [None]
    cell = cell or max(8, min(32, 320 // max(gh, gw)))
    font = _font()
    margin, head, foot = 10, 34, 26
    step = 14 if video else 0  # a label above each frame's map
    map_w, map_h = gw * cell, gh * cell
    maps_h = len(picked) * (map_h + step)
    sheet = Image.new("RGB", (2 * map_w + 3 * margin, head + maps_h + foot + margin), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((margin, 4), title, fill=INK, font=font)
    for k, which in enumerate(("context", "target")):
        values: torch.Tensor = getattr(cov, which)
        vmax = float(values.max())
        x = margin + k * (map_w + margin)
        never = int(cov.never(which).sum())
        draw.text((x, head - 14), f"{which}: min {float(values.min()):.3f}, max {vmax:.3f}, "
                                  f"never {never}", fill=INK, font=font)
        for f, frame in enumerate(picked):
            y = head + f * (map_h + step) + step
            if frame is not None:
                draw.text((x, y - 12), f"frame {frame}", fill=INK, font=font)
            sheet.paste(_heatmap(values if frame is None else values[frame], cell, vmax), (x, y))
        bar_y = head + maps_h + 6
        for px in range(map_w):
            draw.line([x + px, bar_y, x + px, bar_y + 6], fill=ramp(px / max(map_w - 1, 1)))
        draw.text((x, bar_y + 8), "0", fill=INK, font=font)
        label = f"{vmax:.2f}"
        draw.text((x + map_w - 6 * len(label), bar_y + 8), label, fill=INK, font=font)
    return sheet
