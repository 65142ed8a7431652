"""Images stored at more than 8 bits per sample reach every reader of pixels in the 0..255 range
(a hostile review: 16-bit PNG scans went to the model all white, Pillow's conversion clipping
them at 255), and pixels without a known range are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assay.analysis.perceptual_hash import phash64, thumbnail_vector
from assay.datasets.images import ImageError, decode_image, image_properties
from assay.reports.thumbnails import thumbnail_jpeg


@pytest.fixture
def scans(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 48)).astype(np.uint8)
    paths = {k: tmp_path / f"{k}" for k in ("8.png", "16.png", "16.tif", "32.tif", "f.tif")}
    Image.fromarray(grey).save(paths["8.png"])
    Image.fromarray(grey.astype(np.uint16) * 257).save(paths["16.png"])  # the same values
    Image.fromarray(grey.astype(np.uint16) * 257).save(paths["16.tif"])
    Image.fromarray(grey.astype(np.int32)).save(paths["32.tif"])  # 8-bit values in 32 bits
    Image.fromarray(grey.astype(np.float32) / 255).save(paths["f.tif"])
    # A 16-bit PGM, which Pillow opens as mode I (a review: refused when bright, unscaled
    # when all its values were under 256); and a dark one.
    for name, values in (("16.pgm", grey.astype(np.uint16) * 257), ("dark.pgm", grey // 64)):
        header = f"P5 {grey.shape[1]} {grey.shape[0]} 65535\n".encode()
        (tmp_path / name).write_bytes(header + values.astype(">u2").tobytes())
        paths[name] = tmp_path / name
    return paths


@pytest.mark.parametrize("stored", ["16.png", "16.tif", "32.tif", "16.pgm"])
@pytest.mark.parametrize("color", ["grayscale", "rgb"])
def test_a_deeper_image_of_the_same_values_is_the_same_input(
    scans: dict[str, Path], stored: str, color: str
) -> None:
    with Image.open(scans["16.png"]) as img:
        assert img.mode == "I;16"
    for size in ((40, 48), (20, 24)):  # as stored, and resized
        eight = decode_image(str(scans["8.png"]), None, size, color)
        deep = decode_image(str(scans[stored]), None, size, color)
        assert np.array_equal(eight, deep)
    assert image_properties(str(scans[stored])) == image_properties(str(scans["8.png"]))


def test_hashes_and_thumbnails_read_deep_images_alike(scans: dict[str, Path]) -> None:
    eight, deep = scans["8.png"].read_bytes(), scans["16.png"].read_bytes()
    assert phash64(deep) == phash64(eight)
    assert float(thumbnail_vector(deep) @ thumbnail_vector(eight)) > 0.999
    small = thumbnail_jpeg(str(scans["16.png"]))
    assert small is not None
    import io

    assert np.asarray(Image.open(io.BytesIO(small))).mean() < 200  # not white


def test_pixels_without_a_known_range_are_refused(scans: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="floating-point pixels: their range is unknown"):
        decode_image(str(scans["f.tif"]), None, (40, 48), "grayscale")
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.full((8, 8), 4000, np.int32)).save(wide)
    with pytest.raises(ImageError, match=r"32-bit integer pixels beyond 0\.\.255"):
        decode_image(str(wide), None, (8, 8), "rgb")
    assert np.isnan(image_properties(str(scans["f.tif"]))[2])  # no brightness made up


def test_a_dark_16_bit_pgm_is_scaled_as_16_bits(scans: dict[str, Path]) -> None:
    """All its values under 256, it read as 8-bit values (a PNG of the same samples: /257)."""
    dark = decode_image(str(scans["dark.pgm"]), None, (40, 48), "grayscale")
    assert int(dark.max()) <= 1
