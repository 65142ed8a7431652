"""Images of more than 8 bits per sample, brought to the 0..255 range every reader of pixels
assumes (the model's input, the properties measured at registration, hashes, thumbnails).

Pillow's ``convert("L")`` and ``convert("RGB")`` clip a 16-bit grey image at 255 instead of
scaling it: a 16-bit scan (height maps, depth and X-ray images) reached the model all white and
was judged as such. A 16-bit sample becomes value / 257 (65535 is 255, and an 8-bit image
stored at 16 bits, value * 257, gets its own values back). 32-bit integer and floating-point
pixels carry no range (0..1, 0..4095, counts...): they are refused with the reason, never
guessed, except 32-bit integers that all lie within 0..255, which are 8-bit values already,
and the 16-bit samples Pillow opens as 32-bit integers (PGM, some PNGs).
A layer of its own, under every adapter and above the pure core, as ``assay.arrow``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class PixelRangeError(ValueError):
    """An image whose samples have no known range (32-bit integers beyond 0..255, floats)."""


def eight_bit(img: Image.Image) -> Image.Image:
    """``img`` ready for ``convert``: 16-bit grey scaled to 8 bits, 32-bit pixels checked."""
    if img.mode.startswith("I;16") or (img.mode == "I" and _sixteen_bit(img)):
        values = np.asarray(img).astype(np.float64)
        return Image.fromarray(np.rint(values / 257.0).astype(np.uint8), "L")
    if img.mode == "I":
        values = np.asarray(img)
        if values.size and (int(values.min()) < 0 or int(values.max()) > 255):
            raise PixelRangeError(
                "32-bit integer pixels beyond 0..255: their range is unknown; store the images "
                "at 8 or 16 bits per sample"
            )
        return Image.fromarray(values.astype(np.uint8), "L")
    if img.mode == "F":
        raise PixelRangeError(
            "floating-point pixels: their range is unknown; store the images at 8 or 16 bits "
            "per sample"
        )
    return img


def _sixteen_bit(img: Image.Image) -> bool:
    """Whether a 32-bit integer image holds 16-bit samples: Pillow opens a 16-bit PGM (and,
    in some versions, a 16-bit PNG) as mode I, its values scaled to 0..65535 whatever the
    file's maximum (a review: a bright 16-bit PGM was refused, a dark one read unscaled).
    Read from the open file's format and decoder arguments, before its pixels load."""
    if img.format in ("PPM", "PNG"):
        return True
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and raw.startswith("I;16"):
            return True
    return False
