"""Drawings over thumbnails: boxes and masks in two colours, and a model's absurd boxes clipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from assay.reports.thumbnails import EXPERT, MODEL, overlay_png


def test_absurd_model_boxes_are_clipped_to_the_picture(tmp_path: Path) -> None:
    """Bug: a detector's box of 1e30 pixels made Pillow draw for hours and the run hang."""
    path = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(path)
    overlay = {
        "expert_boxes": [[8, 8, 16, 16]],
        "model_boxes": [[0, 0, 1e30, 1e30, 0.9], [-1e30, -1e30, 5, 5, 0.8], [1e9, 1e9, 4, 4, 0.7]],
    }
    png = overlay_png(str(path), overlay)
    assert png is not None
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert pixels.shape == (160, 160, 3)
    assert (pixels[0, :] == MODEL).all(axis=1).any()  # the huge box's top edge, on the picture
    assert (pixels == EXPERT).all(axis=2).any()
