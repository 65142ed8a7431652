"""The detection task reads boxes as the spec says: xyxy, xywh or cxcywh, in model-input pixels
or normalised, brought to the stored image's pixels; padding, NaN and bad classes."""

from __future__ import annotations

import numpy as np
import pytest

from assay.core.prepared import PreparedBatch
from assay.core.spec import parse_model_spec
from assay.core.tasks.detection.task import DetectionTask, ExpertBoxes, to_xywh


def task(box_format: str, normalized: bool) -> DetectionTask:
    spec = parse_model_spec(
        {
            "task": "detection",
            "labels": ["pit", "crack"],
            "input": {"kind": "image", "size": [50, 100], "color": "grayscale"},  # height, width
            "output": {
                "boxes": "b",
                "scores": "s",
                "classes": "c",
                "box_format": box_format,
                "normalized": normalized,
            },
        }
    )
    found = DetectionTask(spec)
    assert isinstance(found, DetectionTask)
    return found


# One box, x 10..30 and y 5..15 in a stored image of 200 x 100 (width, height): twice the
# model input (100 x 50) each way. In model-input pixels: x 5..15, y 2.5..7.5.
CASES = [
    ("xyxy", False, [5.0, 2.5, 15.0, 7.5]),
    ("xywh", False, [5.0, 2.5, 10.0, 5.0]),
    ("cxcywh", False, [10.0, 5.0, 10.0, 5.0]),
    ("xyxy", True, [0.05, 0.05, 0.15, 0.15]),
    ("cxcywh", True, [0.10, 0.10, 0.10, 0.10]),
]


@pytest.mark.parametrize(("box_format", "normalized", "raw"), CASES)
def test_boxes_come_back_in_the_stored_image_pixels(
    box_format: str, normalized: bool, raw: list[float]
) -> None:
    t = task(box_format, normalized)
    out = t.decode(
        {
            "boxes": np.array([[raw, [0, 0, 1, 1]]]),
            "scores": np.array([[0.9, 0.1]]),
            "classes": np.array([[1, -1]]),
        },
        1,
    )
    found = t._model_boxes(out, 0, np.array([200, 100]))
    assert not isinstance(found, str)
    boxes, scores, classes = found
    np.testing.assert_allclose(boxes, [[10.0, 5.0, 20.0, 10.0]])  # the padded second box is gone
    assert scores.tolist() == [0.9] and classes.tolist() == [1]


def test_to_xywh() -> None:
    b = np.array([[1.0, 2.0, 5.0, 8.0]])
    np.testing.assert_allclose(to_xywh(b, "xyxy"), [[1, 2, 4, 6]])
    np.testing.assert_allclose(to_xywh(b, "xywh"), b)
    np.testing.assert_allclose(to_xywh(b, "cxcywh"), [[-1.5, -2.0, 5.0, 8.0]])


def test_hostile_outputs_are_not_judged_with_their_reason() -> None:
    t = task("xyxy", False)
    size = np.array([100, 50])
    for b, s, c, reason in (
        ([[0, 0, np.nan, 4]], [0.5], [0], "is NaN or infinite"),
        ([[0, 0, 2, 4]], [np.inf], [0], "is NaN or infinite"),
        ([[0, 0, 2, 4]], [0.5], [np.nan], "a class is NaN"),
        ([[0, 0, 2, 4]], [0.5], [2], "class index outside 0..1"),
        ([[0, 0, 2, 4]], [0.5], [0.5], "class index that is not a whole number (0.5)"),
        ([[4, 4, 2, 2]], [0.5], [0], "negative size"),
    ):
        out = t.decode(
            {"boxes": np.array([b]), "scores": np.array([s]), "classes": np.array([c])}, 1
        )
        found = t._model_boxes(out, 0, size)
        assert isinstance(found, str) and reason in found, (b, s, c, found)
    with pytest.raises(ValueError, match="one score and class per box"):
        t.decode(
            {"boxes": np.zeros((1, 3, 4)), "scores": np.zeros((1, 2)), "classes": np.zeros((1, 3))},
            1,
        )
    with pytest.raises(ValueError, match="for 2 items"):
        t.decode(
            {"boxes": np.zeros((1, 3, 4)), "scores": np.zeros((1, 3)), "classes": np.zeros((1, 3))},
            2,
        )


def test_an_image_without_expert_boxes_is_not_judged() -> None:
    t = task("xyxy", False)
    prepared = PreparedBatch(
        item_ids=["a", "b"],
        labels=["defect", None],
        label_index=np.array([-2, -1]),
        inputs=np.zeros((2, 1, 50, 100), np.float32),
        readable=np.array([True, True]),
        expected=[
            ExpertBoxes(
                np.array([[10.0, 5.0, 20.0, 10.0]]),
                np.array([0]),
                np.array([200.0]),
                np.array([False]),
            ),
            "the image has no expert annotation",
        ],
        sizes=np.array([[200, 100], [200, 100]]),
    )
    out = t.decode(
        {
            "boxes": np.array([[[5, 2.5, 15, 7.5]]] * 2),
            "scores": np.array([[0.9]] * 2),
            "classes": np.array([[0]] * 2),
        },
        2,
    )
    judged = t.judge(prepared, np.array([0, 1]), out, {}, 0)
    assert judged.judged.tolist() == [0]
    assert judged.errors == {1: "the image has no expert annotation"}
    assert judged.labels == ["defect", None]
    assert judged.predicted.tolist() == [1, -1]  # found at IoU 1, no false box: right
    assert judged.extra["boxes"][1] is not None  # the model's boxes are kept even when not judged


def test_boxes_scored_outside_0_1_are_counted() -> None:
    from assay.core.batch import ScoredBatch
    from assay.core.tasks.detection.mean_ap import DetectionImage
    from assay.core.tasks.detection.task import ScoreRange

    image = DetectionImage(
        0,
        np.zeros((0, 4)),
        np.zeros(0, np.int64),
        np.ones((3, 4)),
        np.array([5.0, -1.0, 0.5]),
        np.zeros(3, np.int64),
    )
    acc = ScoreRange()
    state = acc.update(
        acc.empty(),
        ScoredBatch(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros((1, 2)), detail=[image]),
    )
    assert acc.finalize(state).extras["box_scores"] == {"outside_0_1": 2, "n_boxes": 3}
