"""Expert masks: single-channel PNGs, read back and checked against their registered digest.

Segmentation masks hold a class index per pixel (in the spec's label order; 255: left out);
anomaly masks mark anomalous pixels with any nonzero value.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from assay.core.failures import CHANGED, NO_MASK
from assay.datasets import columns as cols

MAX_MASK_PIXELS = 8192 * 8192


def read_mask(path: str | None, sha256: str | None) -> np.ndarray | str:
    """The mask as [H, W] integers, or why it cannot be used."""
    if path is None:
        return NO_MASK
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return "mask file not found"
    except OSError as exc:
        return f"mask file cannot be read ({exc.strerror or type(exc).__name__})"
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return f"mask file {CHANGED}"
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_MASK_PIXELS:
                return f"mask is {img.width}x{img.height} pixels, over the limit"
            if img.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                return (
                    f"mask is a {img.mode} image: save one class index per pixel "
                    "(a single-channel PNG)"
                )
            mask = np.asarray(img)
    except Exception as exc:  # whatever a damaged file makes Pillow raise
        return f"mask cannot be decoded ({type(exc).__name__})"
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8)
    # Bytes stay bytes: the pixel confusion of two byte masks takes one joint histogram.
    return mask if mask.dtype == np.uint8 else mask.astype(np.int64)


def expert_masks(batch: pa.RecordBatch, pool: ThreadPoolExecutor) -> list[Any]:
    """Per row of a manifest batch: its mask, or the reason it cannot be used (a mask whose
    proportions are not its image's, when the batch has the images' sizes)."""
    paths = batch.column(cols.MASK).to_pylist()
    names = batch.schema.names
    shas = (
        batch.column(cols.MASK_SHA256).to_pylist()
        if cols.MASK_SHA256 in names
        else [None] * len(paths)
    )
    masks = list(pool.map(read_mask, paths, shas))
    if not {"image_width", "image_height"} <= set(names):
        return masks
    widths = batch.column("image_width").to_pylist()
    heights = batch.column("image_height").to_pylist()
    return [
        m if isinstance(m, str) else (_misshapen(m.shape, w, h) or m)
        for m, w, h in zip(masks, widths, heights, strict=True)
    ]


def _misshapen(shape: tuple[int, ...], width: float | None, height: float | None) -> str | None:
    """Why a mask cannot be its image's: other proportions than the image's, beyond the
    rounding of a mask saved at another resolution (a mask of another image, or one turned
    sideways: the model's mask, resized to it, would be judged against the wrong pixels)."""
    if width is None or height is None or not (width > 0 and height > 0):
        return None  # (an unreadable image is not judged anyway)
    rows, columns = shape[0], shape[1]
    if abs(rows * width - columns * height) <= (width + height) / 2:
        return None
    return (
        f"mask is {columns}x{rows} pixels, its image {width:.0f}x{height:.0f}: not the image's "
        "proportions (another image's mask?)"
    )
