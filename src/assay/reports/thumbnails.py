"""Small embedded thumbnails (data URIs) so that a report opens offline as one file.

For detection, segmentation and anomaly runs a thumbnail carries what the experts and the model
drew (``overlay``): the experts' boxes or mask outline in green, the model's boxes or mask in
magenta (a pair that colour-blind readers tell apart too), and a detector's best boxes below its
score threshold thin in amber.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from assay.pixels import eight_bit

EXPERT = (25, 195, 125)
MODEL = (224, 33, 138)
WEAK = (255, 196, 0)  # the model's best boxes below its score threshold, drawn thin
OVERLAY_SIZE = 160  # drawn thumbnails are larger: boxes on 96 px are hard to read


def thumbnail_data_uri(
    path: str | None, size: int = 96, overlay: Mapping[str, Any] | None = None
) -> str | None:
    """A JPEG (PNG with an overlay) data URI of the image at ``path``, or None when it cannot
    be read."""
    if overlay:
        data = overlay_png(path, overlay)
        return None if data is None else "data:image/png;base64," + base64.b64encode(data).decode()
    data = thumbnail_jpeg(path, size)
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode()


def thumbnail_jpeg(path: str | None, size: int = 96) -> bytes | None:
    """JPEG bytes of a thumbnail of the image at ``path``, or None when it cannot be read."""
    if not path:
        return None
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (size, size))  # JPEG decodes at a reduced scale: much faster
            img = eight_bit(opened)
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.convert("L" if img.mode == "L" else "RGB").save(buf, "JPEG", quality=85)
    except Exception:
        # A 30000 x 30000 "bomb" is refused by Pillow before decoding, and a damaged file makes
        # its plugins raise about anything (TypeError, struct.error...): no thumbnail.
        return None
    return buf.getvalue()


def _mask(source: str | bytes | None, shape: tuple[int, int], background: int) -> np.ndarray | None:
    """A mask file (path) or PNG bytes as a boolean [H, W] at ``shape`` (nearest), True where
    not background; None when it cannot be read."""
    if source is None:
        return None
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as m:
            values = np.asarray(m.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
    except Exception:
        return None
    if values.ndim != 2:
        return None
    out: np.ndarray = (values != background) & (values != 255)
    return out


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    out: np.ndarray = mask & ~inner
    return out


def overlay_png(path: str | None, overlay: Mapping[str, Any]) -> bytes | None:
    """PNG bytes of the image at ``path`` with the experts' and the model's drawings."""
    if not path:
        return None
    try:
        with Image.open(path) as img:
            width, height = img.size
            scale = OVERLAY_SIZE / max(width, height)
            shape = (max(1, round(height * scale)), max(1, round(width * scale)))
            canvas = (
                eight_bit(img).convert("RGB").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
            )
    except Exception:
        return None
    pixels = np.asarray(canvas).copy()
    background = int(overlay.get("background", 0))
    model_png = overlay.get("model_mask")
    model = _mask(base64.b64decode(model_png) if model_png else None, shape, background)
    if model is not None:  # the model's mask, filled, half transparent
        pixels[model] = (0.45 * np.array(MODEL) + 0.55 * pixels[model]).astype(np.uint8)
    expert = _mask(overlay.get("expert_mask"), shape, background)
    if expert is not None:  # the experts' mask, outlined
        pixels[_outline(expert)] = EXPERT
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    for boxes, colour, width in (
        (overlay.get("weak_boxes") or [], WEAK, 1),
        (overlay.get("expert_boxes") or [], EXPERT, 2),
        (overlay.get("model_boxes") or [], MODEL, 2),
    ):
        for box in boxes:
            x, y, w, h = (float(v) * scale for v in box[:4])
            # Clipped to the canvas: a model's box of 1e30 pixels would have Pillow draw for hours.
            x0, y0 = min(max(x, -2.0), shape[1] + 2.0), min(max(y, -2.0), shape[0] + 2.0)
            x1 = min(max(x + max(w, 1.0), -2.0), shape[1] + 2.0)
            y1 = min(max(y + max(h, 1.0), -2.0), shape[0] + 2.0)
            if x1 > x0 and y1 > y0:
                draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


def thumbnails(
    paths: Iterable[str | None],
    size: int = 96,
    overlays: Iterable[Mapping[str, Any] | None] | None = None,
) -> list[str | None]:
    """Thumbnails of many images, decoded in parallel (Pillow releases the GIL)."""
    paths = list(paths)
    drawn = list(overlays) if overlays is not None else [None] * len(paths)
    with ThreadPoolExecutor(4, thread_name_prefix="assay-thumb") as pool:
        return list(pool.map(lambda p, o: thumbnail_data_uri(p, size, o), paths, drawn))
