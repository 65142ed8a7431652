"""TIDE error types against tidecv, the TIDE authors' package, on frozen generated cases
(``make_tide_reference.py`` writes them; tidecv needs OpenCV, which Assay does not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.core.tasks.detection.mean_ap import DetectionImage
from assay.core.tasks.detection.tide import TYPES, TideErrors

CASES = json.loads((Path(__file__).parent / "data" / "tide_reference.json").read_text())
SHORT = {
    "classification": "Cls",
    "localisation": "Loc",
    "both": "Both",
    "duplicate": "Dupe",
    "background": "Bkg",
    "missed": "Miss",
}


def images(case: dict[str, Any]) -> list[DetectionImage]:
    return [
        DetectionImage(
            i,
            np.array(im["gt"], float).reshape(-1, 4),
            np.array(im["gt_classes"], np.int64),
            np.array(im["dt"], float).reshape(-1, 4),
            np.array(im["dt_scores"], float),
            np.array(im["dt_classes"], np.int64),
        )
        for i, im in enumerate(case["images"])
    ]


@pytest.mark.parametrize(
    "case", [c for c in CASES if "error" not in c["tidecv"]], ids=lambda c: f"seed{c['seed']}"
)
def test_equal_to_tidecv(case: dict[str, Any]) -> None:
    tide = TideErrors(("a", "b", "c"))
    found = tide.finalize(tide.update(tide.empty(), images(case)))
    reference = case["tidecv"]
    assert found["ap50"] * 100 == pytest.approx(reference["ap50"], rel=1e-9, abs=1e-9)
    for name in TYPES:
        short = SHORT[name]
        assert found["errors"][name]["count"] == reference["counts"][short], name
        assert found["errors"][name]["ap50_cost"] * 100 == pytest.approx(
            reference["costs"][short], rel=1e-9, abs=1e-9
        ), name


def test_any_split_of_the_images_gives_the_same_result() -> None:
    tide = TideErrors(("a", "b", "c"))
    for case in CASES[:20]:
        ims = images(case)
        whole = tide.finalize(tide.update(tide.empty(), ims))
        state = tide.empty()
        for k in range(0, len(ims), 3):
            state = tide.merge(state, tide.update(tide.empty(), ims[k : k + 3]))
        assert tide.finalize(state) == whole


def test_known_answers() -> None:
    """One expert box; a detection of the wrong class on it, and one shifted: fixing the class
    error finds the box (AP50 0 -> 1); the shifted one, pointing at the same box, is dropped."""
    tide = TideErrors(("a", "b"))
    image = DetectionImage(
        0,
        np.array([[0.0, 0.0, 10.0, 10.0]]),
        np.array([0]),
        np.array([[0.0, 0.0, 10.0, 10.0], [6.0, 0.0, 10.0, 10.0]]),
        np.array([0.9, 0.8]),
        np.array([1, 0]),
    )
    found = tide.finalize(tide.update(tide.empty(), [image]))
    errors = found["errors"]
    assert found["ap50"] == 0.0
    assert errors["classification"] == {"count": 1, "ap50_cost": 1.0}
    assert errors["localisation"]["count"] == 1
    assert errors["missed"]["count"] == 0  # a fix could find it: not counted as missed
