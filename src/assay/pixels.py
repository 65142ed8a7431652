"""Images of more than 8 bits per sample, brought to the 0..255 range every reader of pixels
assumes (the model's input, the properties measured at registration, hashes, thumbnails).

Pillow's ``convert("L")`` and ``convert("RGB")`` clip a 16-bit grey image at 255 instead of
scaling it: a 16-bit scan (height maps, depth and X-ray images) reached the model all white and
was judged as such. A 16-bit sample becomes value / 257 (65535 is 255, and an 8-bit image
stored at 16 bits, value * 257, gets its own values back). 32-bit integer and floating-point
pixels carry no range (0..1, 0..4095, counts...): they are refused with the reason, never
guessed, except 32-bit integers that all lie within 0..255, which are 8-bit values already.
A layer of its own, under every adapter and above the pure core, as ``assay.arrow``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class PixelRangeError(ValueError):
    """An image whose samples have no known range (32-bit integers beyond 0..255, floats)."""


def eight_bit(img: Image.Image) -> Image.Image:
    """``img`` ready for ``convert``: 16-bit grey scaled to 8 bits, 32-bit pixels checked."""
    if img.mode.startswith("I;16"):
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
