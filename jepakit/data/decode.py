"""Raw sample (bytes by extension) -> (image tensor, label), with bad images counted.

Decoding is separated from augmentation on purpose: a file PIL cannot read is
bad data (skipped and counted), while an exception in the transform is a bug
and must stop the run.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from jepakit.data.stream import RawSample, SampleError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "ppm", "pgm")
PIL_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
"""The decoders PIL may use: plain raster formats (JPEG covers MPO). PIL would otherwise also identify,
for example, EPS, whose loader runs Ghostscript on the file's PostScript."""
MAX_PIXELS = 1 << 26
"""67 megapixels (8192 x 8192): a larger image is refused before its pixels are
allocated (a 100k x 100k "decompression bomb" PNG is a few kilobytes)."""


class ImageTooLarge(ValueError):
    """The image declares more pixels than :data:`MAX_PIXELS`."""


def describe(exc: Exception) -> str:
    """A short reason for a decode failure (PIL's messages can name in-memory objects)."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not a recognised image format"
    if isinstance(exc, ImageTooLarge):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def decode_image(data: bytes, mode: str = "RGB") -> Image.Image:
    """Fully decode ``data`` (truncated files fail here, not later) and convert to ``mode``.
    Only :data:`PIL_FORMATS`, at most :data:`MAX_PIXELS` pixels (checked on the header)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EXIF and palette-transparency chatter
        image = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageTooLarge(f"image declares {width} x {height} pixels, more than the "
                                f"{MAX_PIXELS // 1_000_000} megapixels jepakit decodes")
        image.load()
        return image if image.mode == mode else image.convert(mode)


class ImageDecoder:
    """Picklable (runs in loader workers): first present image key, optional int label."""

    def __init__(self, transform: Callable[[Image.Image], Any], in_chans: int = 3,
                 image_keys: Sequence[str] = IMAGE_EXTENSIONS, label_key: str = "cls") -> None:
        self.transform = transform
        self.mode = "L" if in_chans == 1 else "RGB"
        self.image_keys = tuple(image_keys)
        self.label_key = label_key

    def image(self, raw: RawSample) -> Image.Image:
        key = next((k for k in self.image_keys if k in raw), None)
        if key is None:
            present = sorted(k for k in raw if not k.startswith("__"))
            raise SampleError(f"no image in the sample (has {present or 'nothing'}; "
                              f"looked for {list(self.image_keys)})")
        try:
            return decode_image(raw[key], self.mode)
        except Exception as exc:  # PIL raises many types for broken files
            raise SampleError(f"undecodable {key}: {describe(exc)}") from None

    def label(self, raw: RawSample) -> int:
        value = raw.get(self.label_key)
        if value is None:
            return -1
        try:
            return int(value.decode() if isinstance(value, bytes) else value)
        except ValueError:
            raise SampleError(f"label {self.label_key}={value!r} is not an integer") from None

    def __call__(self, raw: RawSample) -> tuple[Any, int]:
        image, label = self.image(raw), self.label(raw)
        return self.transform(image), label
