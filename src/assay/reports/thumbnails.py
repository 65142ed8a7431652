"""Small embedded thumbnails (data URIs) so that a report opens offline as one file."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from PIL import Image


def thumbnail_data_uri(path: str | None, size: int = 96) -> str | None:
    """A JPEG data URI of the image at ``path``, or None when it cannot be read."""
    data = thumbnail_jpeg(path, size)
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode()


def thumbnail_jpeg(path: str | None, size: int = 96) -> bytes | None:
    """JPEG bytes of a thumbnail of the image at ``path``, or None when it cannot be read."""
    if not path:
        return None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG decodes at a reduced scale: much faster
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB").save(
                buf, "JPEG", quality=85
            )
    except Exception:
        # A 30000 x 30000 "bomb" is refused by Pillow before decoding, and a damaged file makes
        # its plugins raise about anything (TypeError, struct.error...): no thumbnail.
        return None
    return buf.getvalue()


def thumbnails(paths: Iterable[str | None], size: int = 96) -> list[str | None]:
    """Thumbnails of many images, decoded in parallel (Pillow releases the GIL)."""
    with ThreadPoolExecutor(4, thread_name_prefix="assay-thumb") as pool:
        return list(pool.map(lambda p: thumbnail_data_uri(p, size), paths))
