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


def test_the_detectors_boxes_below_its_threshold_are_drawn_thin(tmp_path: Path) -> None:
    """A missed defect showed only the experts' green box: the model's boxes under the score
    threshold were not drawn, so nobody could see whether it looked there at all. Its five best
    are drawn thin in amber; the confident ones stay magenta."""
    from assay.core.results import ValidationResult
    from assay.reports.thumbnails import WEAK
    from assay.services.overlays import _overlay

    result = ValidationResult.__new__(ValidationResult)
    result.task = {"object_confusion": {"score_threshold": 0.5}}
    boxes = [
        {"x": 10.0 * k, "y": 10.0, "width": 8.0, "height": 8.0, "score": s}
        for k, s in enumerate([0.9, 0.45, 0.4, 0.3, 0.2, 0.1, 0.05])
    ]
    overlay = _overlay("detection", result, {"boxes": boxes}, {"boxes": []})
    assert [b[4] for b in overlay["model_boxes"]] == [0.9]
    assert [b[4] for b in overlay["weak_boxes"]] == [0.45, 0.4, 0.3, 0.2, 0.1]
    picture = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(picture)
    png = overlay_png(str(picture), overlay)
    assert png is not None
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert (pixels == WEAK).all(axis=2).any() and (pixels == MODEL).all(axis=2).any()
