"""The object confusion matrix and the image-level decision of a detector, on cases worked by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.tasks.detection.confusion import ObjectConfusion, match_objects

LABELS = ("scratch", "inclusion")
BG = 2


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=float).reshape(-1, 4)


def classes(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def count(gt, gt_c, dt, scores, dt_c, crowd=None):  # type: ignore[no-untyped-def]
    confusion = ObjectConfusion(LABELS, 0.5, 0.5)
    state = confusion.empty()
    outcome = confusion.add(state, gt, gt_c, dt, np.asarray(scores, float), dt_c, crowd)
    return state, outcome


def test_every_box_found_with_its_class_is_right() -> None:
    state, outcome = count(
        boxes((0, 0, 10, 10), (50, 50, 20, 20)),
        classes(0, 1),
        boxes((51, 50, 20, 20), (1, 0, 10, 10)),
        [0.9, 0.8],
        classes(1, 0),
    )
    assert outcome.right
    assert state.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_a_scratch_called_an_inclusion_is_one_wrong_class_not_a_miss_and_a_false_alarm() -> None:
    state, outcome = count(
        boxes((0, 0, 10, 10)), classes(0), boxes((0, 0, 10, 10)), [0.9], classes(1)
    )
    assert (outcome.wrong_class, outcome.missed, outcome.false_alarms) == (1, 0, 0)
    assert not outcome.right
    assert state[0, 1] == 1 and state.sum() == 1


def test_a_box_takes_its_own_class_before_a_neighbour_it_overlaps_more() -> None:
    """A review: an inclusion inside a scratch, each found by a box of its class, the scratch's
    box overlapping the inclusion more (IoU 1.0) than the scratch (0.8): matched without regard
    to class, both were counted as confusions and the image wrong, at map_50 1.0."""
    state, outcome = count(
        boxes((0, 0, 100, 100), (20, 0, 80, 100)),
        classes(0, 1),
        boxes((20, 0, 80, 100), (20, 0, 80, 100)),
        [0.9, 0.8],
        classes(0, 1),
    )
    assert outcome.right
    assert state.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_missed_boxes_false_alarms_duplicates_and_low_scores() -> None:
    state, outcome = count(
        boxes((0, 0, 10, 10), (100, 100, 10, 10)),
        classes(0, 0),
        # a hit, its duplicate, a box far from anything, and a hit below the score threshold
        boxes((0, 0, 10, 10), (0, 1, 10, 10), (200, 0, 10, 10), (100, 100, 10, 10)),
        [0.9, 0.8, 0.7, 0.3],
        classes(0, 0, 1, 0),
    )
    assert (outcome.missed, outcome.false_alarms, outcome.wrong_class) == (1, 2, 0)
    assert state[0].tolist() == [1, 0, 1]  # one found, one missed
    assert state[BG].tolist() == [1, 1, 0]  # the duplicate and the far box are false alarms
    assert outcome.kept.tolist() == [0, 1, 2]


def test_the_best_overlap_wins_and_boxes_inside_a_crowd_do_not_count() -> None:
    gt = boxes((0, 0, 10, 10), (2, 0, 10, 10), (100, 100, 50, 50))
    # IoU 0.67 with the first box, 1.0 with the second: the second is taken.
    _, outcome = count(gt, classes(0, 0, 1), boxes((2, 0, 10, 10)), [0.9], classes(0))
    assert outcome.gt_match.tolist() == [-1, 0, -1]
    crowd = np.array([False, False, True])
    state, outcome = count(
        gt,
        classes(0, 0, 1),
        boxes((2, 0, 10, 10), (110, 110, 10, 10)),
        [0.9, 0.8],
        classes(0, 1),
        crowd,
    )
    # The box inside the crowd region is neither a hit nor a false alarm; the crowd is no miss.
    assert (outcome.false_alarms, outcome.missed) == (0, 1)
    assert state.sum() == 2 and state[BG].sum() == 0


def test_an_image_without_boxes_or_detections_is_right() -> None:
    state, outcome = count(boxes(), classes(), boxes(), [], classes())
    assert outcome.right and state.sum() == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_rows_sum_to_the_expert_boxes_and_columns_to_the_kept_model_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    confusion = ObjectConfusion(LABELS, 0.5, 0.4)
    total, halves = confusion.empty(), [confusion.empty(), confusion.empty()]
    n_gt_per_class, n_kept_per_class = np.zeros(2, int), np.zeros(2, int)
    for i in range(8):
        n_g, n_d = int(rng.integers(0, 5)), int(rng.integers(0, 7))
        gt = np.column_stack([rng.uniform(0, 60, (n_g, 2)), rng.uniform(5, 30, (n_g, 2))])
        dt = np.column_stack([rng.uniform(0, 60, (n_d, 2)), rng.uniform(5, 30, (n_d, 2))])
        gt_c, dt_c = rng.integers(0, 2, n_g), rng.integers(0, 2, n_d)
        scores = rng.random(n_d)
        outcome = confusion.add(total, gt, gt_c, dt, scores, dt_c)
        confusion.add(halves[i % 2], gt, gt_c, dt, scores, dt_c)
        n_gt_per_class += np.bincount(gt_c, minlength=2)
        n_kept_per_class += np.bincount(dt_c[scores >= 0.4], minlength=2)
        assert outcome.right == (outcome.missed + outcome.false_alarms + outcome.wrong_class == 0)
        found = [match_objects(gt, gt_c, dt, scores, dt_c, 0.5, 0.4)]
        assert found[0].missed == outcome.missed
    assert total[:2].sum(axis=1).tolist() == n_gt_per_class.tolist()
    assert total[:, :2].sum(axis=0).tolist() == n_kept_per_class.tolist()
    assert confusion.merge(*halves).tolist() == total.tolist()
