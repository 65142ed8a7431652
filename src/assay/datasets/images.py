"""Image files: recognising them, decoding them in parallel, checking they did not change."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from PIL import Image

from assay.core.failures import CHANGED
from assay.core.prepared import PreparedBatch
from assay.core.preprocess import image_tensor
from assay.core.spec import ImageInput
from assay.datasets import columns as cols
from assay.pixels import PixelRangeError, eight_bit

# Pillow warns (UserWarning) about damaged metadata, e.g. "Corrupt EXIF data", while it decodes
# the pixels fine: one line per image on stderr in the middle of a run says nothing a user can
# act on. Decoding errors still make the item "not judged" with the reason. (warnings.catch_
# warnings is not thread-safe before Python 3.14, and images decode on a pool.)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm"}


def decode_error(exc: BaseException) -> str:
    """The decoder's error as one reason that groups: its type and the words of its message
    before any detail (``OSError: image file is truncated``, not how many bytes, nor an
    object's address), which the type alone hid."""
    words = re.split(r"[(<'\"\d]", str(exc), maxsplit=1)[0].strip(" :.,")
    return f"{type(exc).__name__}: {words}" if words else type(exc).__name__


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


class ImageError(Exception):
    """An image that cannot be judged; the message is the reason recorded for the item."""


def verified_bytes(path: str, expected_sha256: str | None) -> bytes:
    """A file's bytes, checked against the digest it was registered with."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError("image file not found") from None
    except OSError as exc:
        raise ImageError(
            f"image file cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ImageError(f"image file {CHANGED}")
    return data


def decode_image(
    path: str,
    expected_sha256: str | None,
    size: tuple[int, int],
    color: str,
    draft: bool = False,
) -> npt.NDArray[np.uint8]:
    """Read, verify, decode, convert and (only if needed) resize one image to [H, W, C] uint8.
    ``draft``: a JPEG may be decoded at a fraction of its size first (see ``ImageInput``)."""
    return decode_sized_image(path, expected_sha256, size, color, draft)[0]


def decode_sized_image(
    path: str,
    expected_sha256: str | None,
    size: tuple[int, int],
    color: str,
    draft: bool = False,
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """``decode_image``, and the stored image's (width, height): the frame of expert boxes."""
    data = verified_bytes(path, expected_sha256)
    try:
        with Image.open(io.BytesIO(data)) as img:
            stored = img.size  # before draft, which may decode a JPEG at a fraction of it
            if draft:
                img.draft("L" if color == "grayscale" else "RGB", (size[1], size[0]))
            converted = eight_bit(img).convert("L" if color == "grayscale" else "RGB")
            if converted.size != (size[1], size[0]):
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except PixelRangeError as exc:
        raise ImageError(f"image cannot be used ({exc})") from None
    except Exception as exc:
        # Pillow's plugins answer damaged files with OSError, ValueError, but also TypeError,
        # struct.error, IndexError...: whatever a file makes the decoder raise, that file is
        # what failed, and its item is not judged, with the reason.
        raise ImageError(f"image cannot be decoded ({decode_error(exc)})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if color == "bgr":
        pixels = pixels[:, :, ::-1]
    return pixels, (int(stored[0]), int(stored[1]))


# Reads what the experts drew for each row of a manifest batch (boxes, masks), on the decoder's
# pool: per row, the task's expected value or the reason it cannot be read.
Expectation = Callable[[pa.RecordBatch, ThreadPoolExecutor], list[Any] | None]


class ImageBatchDecoder:
    """Decodes the images of a manifest batch on a thread pool (Pillow releases the GIL)."""

    skips = True  # a SkippingDecoder

    def __init__(
        self,
        spec: ImageInput,
        labels: tuple[str, ...],
        workers: int | None = None,
        expect: Expectation | None = None,
    ) -> None:
        self.spec = spec
        self.labels = labels
        self.workers = workers or min(8, (os.cpu_count() or 1) + 1)
        # Tasks beyond classification: what the experts drew, read from the batch on this pool.
        self.expect = expect
        self._pool: ThreadPoolExecutor | None = None

    def _decode_one(
        self, args: tuple[str | None, str | None, bool]
    ) -> tuple[npt.NDArray[np.uint8] | None, tuple[int, int]] | str:
        path, sha, skip = args
        if path is None:
            return "no image path"
        try:
            if skip:  # its output is reused: only checked, as decoding would check it
                with Image.open(io.BytesIO(verified_bytes(path, sha))) as img:
                    return None, (int(img.size[0]), int(img.size[1]))
            return decode_sized_image(
                path, sha, self.spec.size, self.spec.color, self.spec.decode == "draft"
            )
        except ImageError as exc:
            return str(exc)
        except Exception as exc:  # a header Pillow cannot read: as decoding would say
            return f"image cannot be decoded ({decode_error(exc)})"

    def __call__(
        self, batch: pa.RecordBatch, skip: npt.NDArray[np.bool_] | None = None
    ) -> PreparedBatch:
        """Decode the batch's images; those ``skip`` marks are verified but not decoded (every
        model of the pass reuses their recorded output)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="assay-decode")
        paths = batch.column(cols.PATH).to_pylist()
        names = batch.schema.names
        shas = (
            batch.column(cols.SHA256).to_pylist() if cols.SHA256 in names else [None] * len(paths)
        )
        skips = [False] * len(paths) if skip is None else skip.tolist()
        decoded = list(self._pool.map(self._decode_one, zip(paths, shas, skips, strict=True)))
        errors = {i: d for i, d in enumerate(decoded) if isinstance(d, str)}
        good = [d[0] for d in decoded if not isinstance(d, str) and d[0] is not None]
        skipped = np.array([not isinstance(d, str) and d[0] is None for d in decoded], dtype=bool)
        sizes = np.array([(0, 0) if isinstance(d, str) else d[1] for d in decoded], np.int64)
        expected = None if self.expect is None else self.expect(batch, self._pool)
        h, w = self.spec.size
        pixels = np.stack(good) if good else np.zeros((0, h, w, self.spec.channels), np.uint8)
        ids, labels = batch.column(cols.ITEM_ID), batch.column(cols.LABEL)
        return PreparedBatch(
            item_ids=cols.ArrowStrings(ids),
            labels=cols.ArrowStrings(labels),
            arrow_columns=(ids, labels),
            label_index=cols.label_indices(batch, self.labels),
            inputs=image_tensor(pixels, self.spec),
            readable=np.array([not isinstance(d, str) for d in decoded], dtype=bool),
            errors=errors,
            refs=paths,
            expected=expected,
            sizes=sizes.reshape(-1, 2),
            skipped=skipped if skipped.any() else None,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


PROPERTY_COLUMNS = (
    "image_width",
    "image_height",
    "image_brightness",
    "image_contrast",
    "image_sharpness",
)


def image_properties(path: str | None) -> tuple[float, ...]:
    """Width, height, brightness (mean grey 0..255), contrast (grey standard deviation) and
    sharpness (variance of the Laplacian) of one image; nan for an unreadable file."""
    nan = (math.nan,) * len(PROPERTY_COLUMNS)
    if path is None:
        return nan
    try:
        with Image.open(path) as img:
            width, height = img.size
            img.draft("L", (256, 256))  # statistics on at most ~256 px: cheap and stable
            grey = eight_bit(img).convert("L")
            if max(grey.size) > 256:
                grey.thumbnail((256, 256))
            g = np.asarray(grey, dtype=np.float64)
    except Exception:  # any decoder error of a damaged file (see decode_image)
        return nan
    if g.shape[0] < 3 or g.shape[1] < 3:
        return (float(width), float(height), float(g.mean()), float(g.std()), math.nan)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return (float(width), float(height), float(g.mean()), float(g.std()), float(lap.var()))


def add_image_properties(batch: pa.RecordBatch, pool: ThreadPoolExecutor) -> pa.RecordBatch:
    """Append the property columns (slicing columns for where errors cluster)."""
    values = list(pool.map(image_properties, batch.column(cols.PATH).to_pylist()))
    for k, name in enumerate(PROPERTY_COLUMNS):
        if name in batch.schema.names:  # a manifest may already carry its own measurement
            continue
        batch = batch.append_column(
            name, pa.array([v[k] for v in values], pa.float64(), from_pandas=True)
        )
    return batch


DESCRIPTOR_SIZE = (32, 32)


def image_descriptor(path: str | None, expected_sha256: str | None) -> npt.NDArray[np.float64]:
    """A small appearance vector for grouping similar images: the 8x8 layout of grey and of edge
    strength and a 16-bin histogram (all after normalising the image's brightness and contrast),
    then overall brightness, contrast and sharpness.

    Not a learned embedding; it groups images that look alike (dark, blurred, streaked...), which
    is what a model without an embedding output leaves us. nan when the image cannot be read.
    """
    n = 64 + 64 + 16 + 3
    if path is None:
        return np.full(n, np.nan)
    try:
        # A descriptor for grouping errors, not a model input: the fast decode is enough.
        g = decode_image(path, expected_sha256, DESCRIPTOR_SIZE, "grayscale", True)[..., 0] / 255.0
    except ImageError:
        return np.full(n, np.nan)
    # Pattern features on the image with its own brightness and contrast taken out, so that
    # overall exposure (kept in the last three values) does not drown texture and layout.
    z = (g - g.mean()) / max(float(g.std()), 1e-6)
    gy, gx = np.gradient(z)
    edges = np.hypot(gx, gy)
    blocks = (8, 4, 8, 4)
    layout = z.reshape(blocks).mean(axis=(1, 3)).ravel()
    edge_layout = edges.reshape(blocks).mean(axis=(1, 3)).ravel()
    hist = np.histogram(np.clip(z, -3, 3), bins=16, range=(-3.0, 3.0))[0] / g.size
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return np.concatenate([layout, edge_layout, hist, [g.mean(), g.std(), lap.std()]])
