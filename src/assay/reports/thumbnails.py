"""Small embedded thumbnails (data URIs) so that a report opens offline as one file."""

from __future__ import annotations

import base64
import io

from PIL import Image, UnidentifiedImageError


def thumbnail_data_uri(path: str | None, size: int = 96) -> str | None:
    """A PNG data URI of the image at ``path``, or None when it cannot be read."""
    if not path:
        return None
    try:
        with Image.open(path) as img:
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.convert("RGB" if img.mode not in ("L", "RGB") else img.mode).save(
                buf, "PNG", optimize=True
            )
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
