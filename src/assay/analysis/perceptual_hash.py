"""Perceptual hashes of images (imagehash's DCT pHash): 64 bits that stay close when an image is
re-encoded, resized, slightly shifted in brightness or noised, so that near-duplicates of a
training image are found among validation images by Hamming distance."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from assay.pixels import eight_bit


def phash64(data: bytes) -> int:
    """The 64-bit pHash of an image file's bytes (bit order: imagehash's, row-major)."""
    import imagehash

    with Image.open(io.BytesIO(data)) as img:
        bits = imagehash.phash(eight_bit(img), hash_size=8).hash.reshape(-1)
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def thumbnail_vector(data: bytes, size: int = 64) -> np.ndarray:
    """A ``size`` x ``size`` grayscale thumbnail as a zero-mean, unit-norm vector: the dot
    product of two is the Pearson correlation of their pixels."""
    with Image.open(io.BytesIO(data)) as img:
        grey = eight_bit(img).convert("L")
        a = np.asarray(grey.resize((size, size), Image.Resampling.BILINEAR), np.float64)
    v = a.ravel() - a.mean()
    norm = float(np.linalg.norm(v))
    unit: np.ndarray = v / norm if norm > 0 else v
    return unit
